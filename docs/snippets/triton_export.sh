torchzoo export all --format triton --repository triton-repo
