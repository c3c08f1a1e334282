torchzoo export mnist-mlp --format all                # every format and variant, each checked; exit 1 if a check fails
torchzoo verify mnist-mlp                             # from the files on disk alone: sha256s, then every check again
torchzoo predict mnist-mlp digit.png --variant int8   # a published variant, chosen at run time (fp32 is the default)
