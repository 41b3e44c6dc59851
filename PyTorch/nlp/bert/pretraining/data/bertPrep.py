"""NVIDIA's bertPrep.py command line: download, format, shard and write the pre-training
corpus stage by stage under $BERT_PREP_WORKING_DIR (see `bertfam.pretraining.prep`).

    BERT_PREP_WORKING_DIR=/data/bert python bertPrep.py --action sharding --dataset wikicorpus_en
"""

from bertfam.pretraining.prep import main

if __name__ == "__main__":
    main()
