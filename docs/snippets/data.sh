torchzoo data download names   # into $TORCHZOO_DATA, else ./data; names is copied from the package (no network)
torchzoo data list             # where each dataset is, its size, and its files against the published checksums
