package main

import (
	"strings"
	"testing"

	"github.com/sluice-io/sluice/connectors/postgrescdc/lsnbook"
)

func TestPlanStart(t *testing.T) {
	done := &storedOffset{pos: lsnbook.Complete(500)}
	midSnap := &storedOffset{pos: lsnbook.Complete(100), snapshotting: true}
	cases := []struct {
		mode       string
		stored     *storedOffset
		slotExists bool
		want       startPlan
		err        string
	}{
		{snapInitial, nil, false, startPlan{snapshot: true, createSlot: true, stream: true}, ""},
		// A leftover slot without offsets cannot export a snapshot: recreate it.
		{snapInitial, nil, true, startPlan{snapshot: true, dropSlot: true, createSlot: true, stream: true}, ""},
		{snapInitial, midSnap, true, startPlan{snapshot: true, dropSlot: true, createSlot: true, stream: true}, ""},
		{snapInitial, done, true, startPlan{stream: true}, ""},
		// Offsets without their slot: the changes in between are gone; say so.
		{snapInitial, done, false, startPlan{}, "does not exist"},
		{snapNoData, done, false, startPlan{}, "does not exist"},
		{snapNoData, nil, false, startPlan{createSlot: true, stream: true}, ""},
		{snapNoData, nil, true, startPlan{stream: true}, ""},
		{snapAlways, done, true, startPlan{snapshot: true, dropSlot: true, createSlot: true, stream: true}, ""},
		{snapWhenNeeded, done, false, startPlan{snapshot: true, createSlot: true, stream: true}, ""},
		{snapWhenNeeded, done, true, startPlan{stream: true}, ""},
		{snapInitialOnly, nil, false, startPlan{snapshot: true}, ""},
		{snapInitialOnly, done, false, startPlan{}, ""},
	}
	for _, c := range cases {
		got, err := planStart(c.mode, c.stored, c.slotExists, "s")
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s stored=%v slot=%v: err %v, want %q", c.mode, c.stored, c.slotExists, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%s stored=%v slot=%v: %+v, %v; want %+v", c.mode, c.stored, c.slotExists, got, err, c.want)
		}
	}
}
