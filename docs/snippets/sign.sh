openssl ecparam -name prime256v1 -genkey -noout -out key.pem && openssl ec -in key.pem -pubout -out pub.pem
torchzoo sign wine --key key.pem                       # checks the artifact, then writes artifacts/wine/model.sig
torchzoo verify wine --key pub.pem                     # the signature first, then every file and check
torchzoo predict wine 13.2,1.78,2.14,11.2,100,2.65,2.76,0.26,1.28,4.38,1.05,3.4,1050 --require-signature --key pub.pem
model_signing verify key artifacts/wine --signature artifacts/wine/model.sig --public_key pub.pem
