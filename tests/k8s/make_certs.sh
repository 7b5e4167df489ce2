#!/usr/bin/env bash
# Makes the certificates of the Kubernetes client tests in DIR with openssl: a CA (ca.crt), a
# server certificate for 127.0.0.1 / localhost signed by it (server.crt, server.key), a client
# certificate (client.crt, client.key, CN=prewarm-test, O=system:masters) signed by it, and a
# second, unrelated CA (other-ca.crt) for the "wrong CA" checks.
set -euo pipefail
dir=$1
mkdir -p "$dir"
cd "$dir"
days=2
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.crt \
  -days $days -subj "/CN=prewarm-test-ca" 2>/dev/null
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout other-ca.key -out other-ca.crt \
  -days $days -subj "/CN=prewarm-other-ca" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout server.key -out server.csr \
  -subj "/CN=kube-apiserver" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' > server.ext
openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt -days $days \
  -extfile server.ext 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout client.key -out client.csr \
  -subj "/O=system:masters/CN=prewarm-test" 2>/dev/null
printf 'extendedKeyUsage=clientAuth\n' > client.ext
openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out client.crt -days $days \
  -extfile client.ext 2>/dev/null
