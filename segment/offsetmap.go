package segment

// offsetMap is the cleaner's key -> latest offset map over the dirty
// section of a log (Kafka's SkimpyOffsetMap). Kafka keeps a 16-byte MD5 of
// each key and accepts the collision risk; this map keeps the keys
// themselves, so keys are compared as bytes, exactly, and the memory bound
// (log.cleaner.dedupe.buffer.size) counts their length plus a fixed
// per-entry overhead.
type offsetMap struct {
	// m indexes offs by key: a lookup by a []byte key allocates nothing,
	// and neither does updating a key already present.
	m     map[string]int
	offs  []int64
	used  int64 // estimated bytes held
	limit int64
	// end is the offset after the last batch whose keys all went in: the
	// map speaks for every record below it and for none at or above.
	end int64
}

// offsetMapEntryOverhead estimates what one entry costs besides its key:
// the string header, the index, the offset and the Go map's bucket share.
const offsetMapEntryOverhead = 48

func newOffsetMap(limit int64, start int64) *offsetMap {
	return &offsetMap{m: make(map[string]int), limit: limit, end: start}
}

// cost is what adding keys could take at most (keys already present cost
// nothing, but counting them keeps the check one pass).
func (m *offsetMap) cost(keys [][]byte) int64 {
	var c int64
	for _, k := range keys {
		c += int64(len(k)) + offsetMapEntryOverhead
	}
	return c
}

// fits reports whether a batch with these keys can be added without
// passing the limit.
func (m *offsetMap) fits(keys [][]byte) bool { return m.used+m.cost(keys) <= m.limit }

// put records that key's latest offset so far is off. Offsets arrive in
// ascending order, so the last put wins.
func (m *offsetMap) put(key []byte, off int64) {
	if i, ok := m.m[string(key)]; ok {
		m.offs[i] = off
		return
	}
	m.used += int64(len(key)) + offsetMapEntryOverhead
	m.m[string(key)] = len(m.offs)
	m.offs = append(m.offs, off)
}

// latest returns the newest offset mapped for key, or -1.
func (m *offsetMap) latest(key []byte) int64 {
	if i, ok := m.m[string(key)]; ok {
		return m.offs[i]
	}
	return -1
}
