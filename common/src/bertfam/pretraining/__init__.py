"""Pre-training data: text corpora to masked-LM instances, framework-free.

`bertfam.pretraining.instances` turns documents (one sentence a line, a blank line
between documents) into BERT's MLM + NSP instances, record for record as
google-research/bert's `create_pretraining_data.py` makes them for the same input, flags
and seed; `bertfam.pretraining.features` lays them out as the fixed-size arrays every
writer stores.
"""
