# Certificates and kubeconfigs for the local cluster (sourced by up.sh).
# ECDSA P-256 keys: generated in milliseconds and accepted by every component.
# The PKI is kept across down/up (it is identity, not state); down.sh --purge removes it.

PKI="$TRELLIS_CLUSTER_DIR/pki"

pki_key() { openssl ecparam -name prime256v1 -genkey -noout -out "$1" 2>/dev/null && chmod 600 "$1"; }

# pki_ca NAME CN: a self-signed CA at pki/NAME.{crt,key}
pki_ca() {
  [[ -f "$PKI/$1.crt" ]] && return
  pki_key "$PKI/$1.key"
  openssl req -x509 -new -key "$PKI/$1.key" -subj "/CN=$2" -days 3650 -sha256 \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
    -out "$PKI/$1.crt" 2>/dev/null
}

# pki_cert NAME SUBJECT USAGE [SAN,...]   USAGE: server | client | both; signed by pki/$CA (default ca)
pki_cert() {
  local name="$1" subj="$2" usage="$3" sans="${4:-}" ca="${CA:-ca}" ext
  [[ -f "$PKI/$name.crt" && -f "$PKI/$name.key" ]] && return
  pki_key "$PKI/$name.key"
  ext="$PKI/$name.ext"
  {
    echo "basicConstraints=critical,CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    case "$usage" in
      server) echo "extendedKeyUsage=serverAuth" ;;
      client) echo "extendedKeyUsage=clientAuth" ;;
      both) echo "extendedKeyUsage=serverAuth,clientAuth" ;;
    esac
    [[ -n "$sans" ]] && echo "subjectAltName=$sans"
  } >"$ext"
  openssl req -new -key "$PKI/$name.key" -subj "$subj" -out "$PKI/$name.csr" 2>/dev/null
  openssl x509 -req -in "$PKI/$name.csr" -CA "$PKI/$ca.crt" -CAkey "$PKI/$ca.key" -CAcreateserial \
    -days 825 -sha256 -extfile "$ext" -out "$PKI/$name.crt" 2>/dev/null
  rm -f "$PKI/$name.csr" "$ext"
}

# pki_kubeconfig FILE CERT_NAME   (a kubeconfig for the client cert pki/CERT_NAME.{crt,key})
pki_kubeconfig() {
  local file="$1" cert="$2" tmp
  tmp="$file.tmp"
  cat >"$tmp" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: trellis
  cluster:
    server: https://${APISERVER_HOST:-127.0.0.1}:6443
    certificate-authority-data: $(base64 -w0 <"$PKI/ca.crt")
users:
- name: $cert
  user:
    client-certificate-data: $(base64 -w0 <"$PKI/$cert.crt")
    client-key-data: $(base64 -w0 <"$PKI/$cert.key")
contexts:
- name: trellis
  context:
    cluster: trellis
    user: $cert
current-context: trellis
EOF
  chmod 600 "$tmp"
  mv -f "$tmp" "$file"
}

# The addresses the API server's certificate names: loopback, the kubernetes Service, the single
# node's bridge and the nodes' bridge. An older certificate without the last is made again.
APISERVER_SANS="IP:127.0.0.1,IP:10.96.0.1,IP:10.244.0.1,IP:10.243.0.1"

# pki_setup: the CAs, control-plane certificates and kubeconfigs (server https://$APISERVER_HOST:6443).
pki_setup() {
  mkdir -p "$PKI"
  chmod 700 "$PKI"
  pki_ca ca trellis-local-ca
  # Request-header (front-proxy) CA: the apiserver publishes it in extension-apiserver-authentication,
  # which the controller-manager and scheduler read for their own authentication.
  pki_ca front-proxy-ca trellis-front-proxy-ca
  CA=front-proxy-ca pki_cert front-proxy-client "/CN=front-proxy-client" client
  [[ -f "$PKI/sa.key" ]] || {
    pki_key "$PKI/sa.key"
    openssl ec -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null
  }
  if [[ -f "$PKI/apiserver.crt" ]] && ! openssl x509 -in "$PKI/apiserver.crt" -noout -ext subjectAltName 2>/dev/null |
    grep -q 'IP Address:10.243.0.1'; then
    rm -f "$PKI/apiserver.crt" "$PKI/apiserver.key"
  fi
  pki_cert apiserver "/CN=kube-apiserver" server \
    "$APISERVER_SANS,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
  # Used by the apiserver for kubectl logs/exec against the kubelet.
  pki_cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" client
  pki_cert admin "/O=system:masters/CN=trellis-admin" client
  pki_cert controller-manager "/CN=system:kube-controller-manager" client
  pki_cert scheduler "/CN=system:kube-scheduler" client
  # The user the default system:node-proxier binding names.
  pki_cert kube-proxy "/CN=system:kube-proxy" client

  pki_kubeconfig "$TRELLIS_CLUSTER_DIR/kubeconfig" admin
  pki_kubeconfig "$TRELLIS_CLUSTER_DIR/controller-manager.kubeconfig" controller-manager
  pki_kubeconfig "$TRELLIS_CLUSTER_DIR/scheduler.kubeconfig" scheduler
  pki_kubeconfig "$TRELLIS_CLUSTER_DIR/kube-proxy.kubeconfig" kube-proxy
}

# pki_node: the kubelet identity the Node authorizer and NodeRestriction expect, and its serving
# certificate, for the node node_context selected.
pki_node() {
  local node="$NODE_NAME" ip="$NODE_IP"
  pki_cert "kubelet-$node" "/O=system:nodes/CN=system:node:$node" client
  pki_cert "kubelet-serving-$node" "/CN=system:node:$node" server "IP:$ip,IP:127.0.0.1,DNS:$node,DNS:localhost"
  mkdir -p "$NODE_DIR"
  pki_kubeconfig "$NODE_DIR/kubelet.kubeconfig" "kubelet-$node"
}
