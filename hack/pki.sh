#!/usr/bin/env bash
# Generates a throwaway PKI for a local control plane into DIR (EC P-256, valid for DAYS days):
#   ca.{crt,key}           cluster CA (client CA, serving CA, signing CA for the controller manager)
#   apiserver.{crt,key}    kube-apiserver serving cert (127.0.0.1, the service IP, kubernetes.default…,
#                          and EXTRA_SANS, e.g. IP:10.244.0.1 for a node's bridge address)
#   admin.{crt,key}        O=system:masters client
#   <component>.{crt,key}  one client cert per component named on the command line, CN=system:<component>,
#                          or NAME=/SUBJECT for another subject (a kubelet's /O=system:nodes/CN=system:node:N)
#   sa.{key,pub}           service-account token signing key pair
# Usage: hack/pki.sh DIR [SERVICE_IP] [component…]
set -euo pipefail
dir=$1; service_ip=${2:-10.0.0.1}; shift $(( $# >= 2 ? 2 : $# ))
days=${DAYS:-7}
mkdir -p "$dir"; cd "$dir"
umask 077

key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key" 2>/dev/null; }
sign() { # name subject extensions
  key "$1"
  openssl req -new -key "$1.key" -subj "$2" -out "$1.csr" 2>/dev/null
  printf '%s\n' "$3" >"$1.ext"
  openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days "$days" \
    -extfile "$1.ext" -out "$1.crt" 2>/dev/null
  rm -f "$1.csr" "$1.ext"
}

key ca
openssl req -x509 -new -key ca.key -subj "/CN=epreuve-local-ca" -days "$days" -out ca.crt \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" 2>/dev/null

sign apiserver "/CN=kube-apiserver" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,IP:$service_ip,${EXTRA_SANS:+$EXTRA_SANS,}DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"

client_ext="basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth"
sign admin "/O=system:masters/CN=epreuve-admin" "$client_ext"
for c in "$@"; do
  case $c in
    *=/*) sign "${c%%=*}" "${c#*=}" "$client_ext" ;;
    *) sign "$c" "/CN=system:$c" "$client_ext" ;;
  esac
done

openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out sa.key 2>/dev/null
openssl pkey -in sa.key -pubout -out sa.pub 2>/dev/null
rm -f ca.srl
