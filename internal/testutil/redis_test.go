package testutil

import (
	"testing"
)

func TestRedis(t *testing.T) {
	addr := Redis(t)
	if err := redisPing(addr); err != nil {
		t.Fatalf("the shared Redis at %s: %v", addr, err)
	}
	if again := Redis(t); again != addr {
		t.Errorf("Redis returned %s, then %s", addr, again)
	}
}

func TestRedisServerRestarts(t *testing.T) {
	s := StartRedis(t)
	if err := redisPing(s.Addr); err != nil {
		t.Fatalf("new server: %v", err)
	}
	s.Stop()
	if err := redisPing(s.Addr); err == nil {
		t.Fatal("the stopped server answers PING")
	}
	s.Stop()
	s.Start()
	if err := redisPing(s.Addr); err != nil {
		t.Fatalf("restarted server: %v", err)
	}
}

func TestRedisCluster(t *testing.T) {
	addrs := RedisCluster(t)
	if len(addrs) != 3 {
		t.Fatalf("RedisCluster returned %d addresses, want 3", len(addrs))
	}
	for _, a := range addrs {
		if err := redisPing(a); err != nil {
			t.Errorf("cluster node %s: %v", a, err)
		}
	}
}
