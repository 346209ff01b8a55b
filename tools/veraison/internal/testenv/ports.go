package testenv

import (
	"fmt"
	"net"
)

// FreePorts returns n distinct TCP ports that were free on 127.0.0.1 a moment
// ago: it holds n listeners on port 0 at once, then closes them. Another
// process may take a port before the caller binds it; the services then fail
// to start and say so in their logs.
func FreePorts(n int) ([]int, error) {
	if n < 1 {
		return nil, fmt.Errorf("ports: asked for %d ports, want at least 1", n)
	}
	ls := make([]net.Listener, 0, n)
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("ports: listening on 127.0.0.1:0: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
