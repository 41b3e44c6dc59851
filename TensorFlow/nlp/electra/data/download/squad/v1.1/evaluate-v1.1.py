"""The official SQuAD v1.1 evaluation command line, as run_tf_squad.py's --eval_script runs it:

    python evaluate-v1.1.py dev-v1.1.json predictions.json

prints the scores as JSON (the official script's keys and floats), computed by the shared
package's evaluator (bertfam.squad.evaluate, which scores v2.0 files as evaluate-v2.0.py).
Keep it beside the SQuAD files: scripts/electra_squad.sh looks for it there.
"""

from bertfam.squad.evaluate import main

if __name__ == "__main__":
    main()
