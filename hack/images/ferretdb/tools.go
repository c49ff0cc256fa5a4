//go:build tools

// Package tools pins cmd/ferretdb in go.mod; build.sh builds it with `go build <package>`.
package tools

import _ "github.com/FerretDB/FerretDB/cmd/ferretdb"
