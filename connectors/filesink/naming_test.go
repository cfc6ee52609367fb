package main

import (
	"testing"
	"time"
)

func TestNamesRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		want fileName
		ok   bool
	}{
		{finalName("orders", 3, 100, 149, "ndjson"), fileName{"orders", 3, 100, 149, false}, true},
		{finalName("a-1-2", 0, 5, 9, "json"), fileName{"a-1-2", 0, 5, 9, false}, true},
		{finalName("logs.app_x", 12, 0, 0, "txt"), fileName{"logs.app_x", 12, 0, 0, false}, true},
		{tempName("orders", 3, 150), fileName{"orders", 3, 150, -1, true}, true},
		{tempName("a-7", 1, 0), fileName{"a-7", 1, 0, -1, true}, true},
		{"orders-3-100-149.csv", fileName{}, false},    // not ours
		{"orders-3-149-100.ndjson", fileName{}, false}, // end before start
		{"orders-x-1-2.ndjson", fileName{}, false},
		{"orders-3-01-2.ndjson", fileName{}, false}, // not as we write numbers
		{"3-1-2.ndjson", fileName{}, false},         // no topic
		{".orders-3.tmp", fileName{}, false},
		{"orders-3-100.tmp", fileName{}, false}, // a temp name without its dot
		{"README", fileName{}, false},
	} {
		got, ok := parseName(tc.name)
		if ok != tc.ok || (ok && got != tc.want) {
			t.Errorf("parseName(%q) = %+v %v, want %+v %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
}

func TestRecoveryResumesAfterTheLastFinalFileAndDropsTempFiles(t *testing.T) {
	names := []string{
		"orders-0-0-99.ndjson", "orders-0-100-149.ndjson", "orders-0-150-150.json", // a format change keeps counting
		".orders-0-151.tmp",
		"orders-1-0-9.ndjson", ".orders-1-10.tmp",
		"orders-x-0-0-500.ndjson", // another topic whose name extends this one's
		".orders-x-0-501.tmp",
		"notes.txt",
	}
	for _, tc := range []struct {
		topic     string
		partition int32
		next      int64
		deletions []string
	}{
		{"orders", 0, 151, []string{".orders-0-151.tmp"}},
		{"orders", 1, 10, []string{".orders-1-10.tmp"}},
		{"orders", 2, -1, nil},
		{"orders-x", 0, 501, []string{".orders-x-0-501.tmp"}},
	} {
		r := recoverPartition(names, tc.topic, tc.partition)
		if r.next != tc.next || len(r.deletions) != len(tc.deletions) || (len(tc.deletions) > 0 && r.deletions[0] != tc.deletions[0]) {
			t.Errorf("%s/%d: %+v, want next %d deleting %v", tc.topic, tc.partition, r, tc.next, tc.deletions)
		}
	}
}

func TestRotationIsDue(t *testing.T) {
	t0 := time.Date(2026, 12, 5, 2, 0, 0, 0, time.UTC)
	r := rotation{maxRecords: 100, maxBytes: 1000, interval: time.Minute}
	for _, tc := range []struct {
		name           string
		records, bytes int64
		age            time.Duration
		due            bool
	}{
		{"empty, however old", 0, 0, time.Hour, false},
		{"young and small", 10, 100, time.Second, false},
		{"records", 100, 100, 0, true},
		{"bytes", 1, 1000, 0, true},
		{"age", 1, 1, time.Minute, true},
	} {
		if got := r.due(tc.records, tc.bytes, t0, t0.Add(tc.age)); got != tc.due {
			t.Errorf("%s: due %v, want %v", tc.name, got, tc.due)
		}
	}
	if (rotation{}).due(1<<40, 1<<40, t0, t0.Add(1000*time.Hour)) {
		t.Error("no bounds: due")
	}
}
