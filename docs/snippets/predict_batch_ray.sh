torchzoo predict-batch mnist-mlp digits/ -o digits-ray.jsonl --ray --actors 2   # add --address HOST:6379 to join a cluster
