package connectv1

// SetStructLayout turns the positional data.Struct access on or off for
// a test (off is the fallback used if data.Struct changes shape) and
// returns a function that restores it.
func SetStructLayout(on bool) (restore func()) {
	was := useStructLayout
	useStructLayout = on && structLayoutOK
	return func() { useStructLayout = was }
}

// StructLayoutOK is structLayoutOK, for a test to insist on it.
var StructLayoutOK = structLayoutOK
