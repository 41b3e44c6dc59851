# What the GPU benchmark scripts share; sourced after setting $out (the output folder) and
# $python. `run NAME LIMIT SCRIPT ARGS...` runs one benchmark for at most LIMIT seconds,
# its figures to $out/NAME.txt (and stderr to NAME.err) as they come.
mkdir -p "$out"
run() {
  local name=$1 limit=$2
  shift 2
  echo "== $name: $*"
  timeout "$limit" "$python" "$@" 2>"$out/$name.err" | tee "$out/$name.txt"
  echo "   ($name: exit ${PIPESTATUS[0]}, $SECONDS s so far)"
}
{ nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv; "$python" -c \
  'import torch, transformers; print(torch.__version__, transformers.__version__)'; } \
  >"$out/env.txt" 2>&1
cat "$out/env.txt"
