torchzoo predict-batch mnist-mlp digits/ -o digits.jsonl     # {"file":"digits/0_7.png","input":"digits/0_7.png","label":"7","top":[...]}
torchzoo predict-batch wine samples.csv -o wine.jsonl -k 1   # {"line":2,"input":"14.23,1.71,...","label":"cultivar 1","top":[...]}
torchzoo predict-batch names surnames.txt -o names.jsonl      # {"line":3,"input":"","error":"name '' has no letters; ..."}
