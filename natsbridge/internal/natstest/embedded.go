package natstest

import (
	"errors"
	"net"

	"github.com/nats-io/nats-server/v2/server"
)

// embedded is a server running in the test process.
type embedded struct{ srv *server.Server }

// startEmbedded starts a server on port (0: a random one) with JetStream
// storage in dir, and waits until it takes connections.
func startEmbedded(port int, dir string) (running, error) {
	if port == 0 {
		port = server.RANDOM_PORT
	}
	s, err := server.NewServer(&server.Options{
		Host:      "127.0.0.1",
		Port:      port,
		JetStream: true,
		StoreDir:  dir,
		NoLog:     true,
		NoSigs:    true,
	})
	if err != nil {
		return nil, err
	}
	s.Start()
	if !s.ReadyForConnections(Wait) {
		s.Shutdown()
		s.WaitForShutdown()
		return nil, errors.New("not ready for connections")
	}
	return embedded{s}, nil
}

func (e embedded) port() int { return e.srv.Addr().(*net.TCPAddr).Port }

func (e embedded) stop() error {
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
	return nil
}
