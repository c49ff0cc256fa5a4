// Command etcd is upstream's etcd server. Its own main package lives in the go.etcd.io/etcd/v3
// root module, whose go.mod replaces its sibling modules with local paths, so `go build` of it
// from the module proxy fails; go.etcd.io/etcd/server/v3's etcdmain is what that main calls.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
