package isr

// UndefinedEpoch and UndefinedEpochOffset are Kafka's "unknown" answers of an
// epoch lookup (UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET), and what a request
// field that was not sent holds.
const (
	UndefinedEpoch       int32 = -1
	UndefinedEpochOffset int64 = -1
)

// EpochEntry says that leader epoch Epoch wrote its first record at
// StartOffset: one line of a replica's leader-epoch cache. A slice of them is
// ordered by strictly increasing Epoch and StartOffset.
type EpochEntry struct {
	Epoch       int32
	StartOffset int64
}

// EpochEndOffset is the answer to "where does epoch E end?": the largest epoch
// at or below E that the log knows and the offset where it ends, the start of
// the next known epoch or the log end offset. It is OffsetForLeaderEpoch's
// answer and a Fetch response's DivergingEpoch.
type EpochEndOffset struct {
	Epoch     int32
	EndOffset int64
}

// EpochLookup answers EndOffsetFor over the caller's epoch cache with its
// current log end offset; for replica.EpochCache that is
// func(e int32) (int32, int64) { return cache.EndOffsetFor(e, log.LEO()) }.
type EpochLookup func(epoch int32) (foundEpoch int32, endOffset int64)

// EndOffsetFor is Kafka's LeaderEpochFileCache.endOffsetFor over entries: for
// the latest epoch the log end offset; for an older epoch the largest known
// epoch at or below it and the start offset of the next one; for an epoch
// below every entry the requested epoch and the first start offset (the data
// before it is gone, fetch from there); undefined for an undefined or
// too-new epoch, or an empty cache.
func EndOffsetFor(entries []EpochEntry, requested int32, logEndOffset int64) EpochEndOffset {
	n := len(entries)
	if requested == UndefinedEpoch || n == 0 {
		return EpochEndOffset{UndefinedEpoch, UndefinedEpochOffset}
	}
	if requested == entries[n-1].Epoch {
		return EpochEndOffset{requested, logEndOffset}
	}
	higher := 0
	for higher < n && entries[higher].Epoch <= requested {
		higher++
	}
	switch higher {
	case n:
		return EpochEndOffset{UndefinedEpoch, UndefinedEpochOffset}
	case 0:
		return EpochEndOffset{requested, entries[0].StartOffset}
	}
	return EpochEndOffset{entries[higher-1].Epoch, entries[higher].StartOffset}
}
