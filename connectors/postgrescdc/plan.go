package main

import "fmt"

// startPlan is what a task does on start, decided from the snapshot
// mode, the stored offset and whether the slot exists.
type startPlan struct {
	snapshot   bool // read the captured tables first
	dropSlot   bool // drop the existing slot: a new one must export the snapshot
	createSlot bool // create the slot (exporting a snapshot when snapshot is set)
	stream     bool // stream changes from the slot
}

// planStart decides how a task starts. The rule it keeps: a stream never
// starts somewhere that skips changes the stored offset has not seen.
// A snapshot is handed over to streaming exactly by creating the slot
// with an exported snapshot, so a snapshot always comes with a new slot
// (recreating an existing one loses nothing: the snapshot covers every
// change the old slot held). Without a snapshot, a stored offset needs
// the slot that holds the WAL after it.
func planStart(mode string, stored *storedOffset, slotExists bool, slot string) (startPlan, error) {
	unfinished := stored == nil || stored.snapshotting
	var p startPlan
	switch mode {
	case snapInitial:
		p = startPlan{snapshot: unfinished, stream: true}
	case snapAlways:
		p = startPlan{snapshot: true, stream: true}
	case snapNoData:
		p = startPlan{stream: true}
	case snapWhenNeeded:
		p = startPlan{snapshot: unfinished || !slotExists, stream: true}
	case snapInitialOnly:
		// A snapshot only: no slot is needed, nothing is streamed.
		return startPlan{snapshot: unfinished}, nil
	default:
		return p, fmt.Errorf("snapshot.mode %q: unknown", mode)
	}
	switch {
	case p.snapshot:
		p.dropSlot, p.createSlot = slotExists, true
	case !slotExists && stored != nil:
		return p, fmt.Errorf("replication slot %q does not exist but this connector has offsets (LSN %d): "+
			"the changes since then were held by the slot and are lost; set snapshot.mode=when_needed (or always) "+
			"to take a new snapshot, or delete the connector's offsets to start from a new slot", slot, stored.pos.Resume)
	case !slotExists:
		p.createSlot = true
	}
	return p, nil
}
