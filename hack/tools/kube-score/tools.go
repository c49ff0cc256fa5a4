//go:build tools

// Package tools pins the command this module builds; it is never compiled.
package tools

import _ "github.com/zegl/kube-score/cmd/kube-score"
