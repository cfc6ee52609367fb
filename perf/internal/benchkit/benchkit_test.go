package benchkit

import (
	"context"
	"fmt"
	"math"
	"net"
	"testing"
	"time"
)

func TestMedian(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want float64
	}{{[]float64{3, 1, 2}, 2}, {[]float64{4, 1, 3, 2}, 2.5}, {[]float64{7}, 7}} {
		if got := Median(c.in); got != c.want {
			t.Errorf("Median(%v) = %v, want %v", c.in, got, c.want)
		}
	}
	if !math.IsNaN(Median(nil)) {
		t.Error("Median of nothing is not NaN")
	}
}

func TestWaitPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if err := WaitPort(context.Background(), ln.Addr().String(), time.Second, nil); err != nil {
		t.Fatalf("a listening port: %v", err)
	}
	port, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	close(exited)
	if err := WaitPort(context.Background(), net.JoinHostPort("127.0.0.1", itoa(port)), 5*time.Second, exited); err == nil {
		t.Fatal("an exited process's port answered")
	}
}

func itoa(n int) string { return fmt.Sprint(n) }
