//go:build tools

// Package tools pins agnhost in go.mod; hack/build-go-tool.sh builds it with `go build <package>`.
package tools

import _ "k8s.io/kubernetes/test/images/agnhost"
