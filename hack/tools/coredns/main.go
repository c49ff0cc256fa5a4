// Command coredns is CoreDNS with only the plugins the local cluster's DNS needs: the cluster's
// Service names (kubernetes), health/ready probes, a cache and errors/log. No forward plugin:
// nothing is resolved outside the machine. Built by hack/build-go-tool.sh coredns.
package main

import (
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/ready"

	"github.com/coredns/coredns/coremain"
)

func main() {
	coremain.Run()
}
