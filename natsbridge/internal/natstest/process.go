package natstest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Binary returns the path of the standalone nats-server: $NATS_SERVER_BIN
// if set, else nats-server on $PATH, else /usr/sbin/nats-server.
func Binary() (string, error) {
	if bin := os.Getenv("NATS_SERVER_BIN"); bin != "" {
		return exec.LookPath(bin)
	}
	if bin, err := exec.LookPath("nats-server"); err == nil {
		return bin, nil
	}
	return exec.LookPath("/usr/sbin/nats-server")
}

// A process is a standalone nats-server. Its log (stderr) is read by one
// goroutine, which ends when the process does; stop joins it.
type process struct {
	cmd     *exec.Cmd
	addr    int
	logDone chan struct{} // closed when the log reader has returned
	tail    *logTail      // the last lines, for errors
}

const (
	listeningLine = "Listening for client connections on 127.0.0.1:"
	readyLine     = "Server is ready"
)

// startProcess starts the binary on 127.0.0.1 and port (0: a random one
// that the server picks and logs) with JetStream storage in dir, and waits
// until it logs that it is ready.
func startProcess(tb testing.TB, port int, dir string) (running, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	if port == 0 {
		port = -1 // the server picks a free port
	}
	cmd := exec.Command(bin, "-a", "127.0.0.1", "-p", strconv.Itoa(port), "-js", "-sd", dir)
	setParentDeathSignal(cmd) // no server outlives a test binary that crashes
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &process{cmd: cmd, logDone: make(chan struct{}), tail: &logTail{}}
	ready := make(chan int, 1)
	go p.readLog(stderr, ready) // joined by stop, or below
	select {
	case p.addr = <-ready:
		tb.Logf("standalone nats-server %s (pid %d) on 127.0.0.1:%d", bin, cmd.Process.Pid, p.addr)
		return p, nil
	case <-p.logDone:
		_ = cmd.Wait()
		return nil, fmt.Errorf("%s exited before it was ready: %s", bin, p.tail)
	case <-time.After(Wait):
		_ = p.kill()
		return nil, fmt.Errorf("%s not ready after %v: %s", bin, Wait, p.tail)
	}
}

// readLog reads the server's log until the process ends. It sends the
// client port once the server is ready, and keeps the last lines.
func (p *process) readLog(r io.Reader, ready chan<- int) {
	defer close(p.logDone)
	sc := bufio.NewScanner(r)
	port := 0
	for sc.Scan() {
		line := sc.Text()
		p.tail.add(line)
		if _, after, ok := strings.Cut(line, listeningLine); ok {
			port, _ = strconv.Atoi(strings.TrimSpace(after))
		}
		if strings.HasSuffix(line, readyLine) && port != 0 {
			ready <- port
			port = 0
		}
	}
	_, _ = io.Copy(io.Discard, r)
}

func (p *process) port() int { return p.addr }

// stop asks the server to shut down (SIGTERM), kills it if it has not
// exited within Wait, and waits for it and its log reader.
func (p *process) stop() error {
	if err := terminate(p.cmd.Process); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return p.kill()
	}
	select {
	case <-p.logDone:
	case <-time.After(Wait):
		return errors.Join(fmt.Errorf("no exit after %v; killed", Wait), p.kill())
	}
	_ = p.cmd.Wait() // exits with the signal's status
	return nil
}

// kill kills the process and waits for it and its log reader.
func (p *process) kill() error {
	err := p.cmd.Process.Kill()
	<-p.logDone
	_ = p.cmd.Wait()
	if errors.Is(err, os.ErrProcessDone) {
		return nil
	}
	return err
}

// A logTail keeps the last lines of a server's log. Only the log reader
// writes it, and it is read once the reader is done or after ready.
type logTail struct{ lines []string }

func (t *logTail) add(line string) {
	if len(t.lines) == 8 {
		t.lines = t.lines[1:]
	}
	t.lines = append(t.lines, line)
}

func (t *logTail) String() string { return strings.Join(t.lines, " | ") }
