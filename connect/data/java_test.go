package data

import (
	"bytes"
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// TestJavaNumberText compares FormatFloat and Decimal.String with the
// JVM's Double.toString, Float.toString and BigDecimal.toString on edge
// and random values. Skipped without java. Before JDK 19 Double.toString
// sometimes printed more digits than needed (JDK-4511638); where the JVM
// here does that, the Go text must be shorter and denote the same value.
func TestJavaNumberText(t *testing.T) {
	if testing.Short() {
		t.Skip("starting a JVM takes seconds")
	}
	java, err := exec.LookPath("java")
	if err != nil {
		t.Skip("no java here:", err)
	}
	type tc struct {
		in   string
		want string // Go's text
		f    float64
		bits int
	}
	var cases []tc
	r := rand.New(rand.NewPCG(1, 2))
	doubles := []float64{0, math.Copysign(0, -1), 1, -1, 0.1, 100, 1e7, 9999999, 1e-3, 0.00099, 1e20, 1e-5, 123456.789,
		math.MaxFloat64, math.SmallestNonzeroFloat64, math.NaN(), math.Inf(1), math.Inf(-1), 2.5e-310}
	for range 300 {
		doubles = append(doubles, math.Float64frombits(r.Uint64()), r.NormFloat64()*math.Pow(10, float64(r.IntN(30)-15)))
	}
	for _, d := range doubles {
		if math.IsNaN(d) && d != d && math.Float64bits(d) != math.Float64bits(math.NaN()) {
			d = math.NaN()
		}
		cases = append(cases, tc{in: fmt.Sprintf("d %d", int64(math.Float64bits(d))), want: FormatFloat(d, 64), f: d, bits: 64})
	}
	floats := []float32{0, 1, 0.1, 12.34, 1e7, 1e-3, 3.4028235e38, 1.4e-45, float32(math.Inf(1))}
	for range 300 {
		floats = append(floats, math.Float32frombits(r.Uint32()&^(0xff<<23)|uint32(r.IntN(254)+1)<<23))
	}
	for _, f := range floats {
		cases = append(cases, tc{in: fmt.Sprintf("f %d", int32(math.Float32bits(f))), want: FormatFloat(float64(f), 32), f: float64(f), bits: 32})
	}
	for _, d := range []Decimal{NewDecimal(156, 2), NewDecimal(-156, 2), NewDecimal(0, 3), NewDecimal(15, -1), NewDecimal(1, 9),
		NewDecimal(-1, 7), NewDecimal(123, 8), NewDecimal(12345, 0), NewDecimal(0, -2), {Unscaled: new(big.Int).Lsh(big.NewInt(1), 100), Scale: 20}} {
		cases = append(cases, tc{in: fmt.Sprintf("bd %s %d", d.Unscaled, d.Scale), want: d.String()})
	}
	var in bytes.Buffer
	for _, c := range cases {
		in.WriteString(c.in + "\n")
	}
	cmd := exec.Command(java, "testdata/JavaText.java")
	cmd.Stdin = &in
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("java: %v", err)
	}
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if len(lines) != len(cases) {
		t.Fatalf("java answered %d lines for %d", len(lines), len(cases))
	}
	longer := 0
	for i, c := range cases {
		got := lines[i]
		if got == c.want {
			continue
		}
		if c.bits != 0 {
			j, err1 := strconv.ParseFloat(got, c.bits)
			g, err2 := strconv.ParseFloat(c.want, c.bits)
			if err1 == nil && err2 == nil && j == g && len(c.want) < len(got) {
				longer++ // the pre-JDK-19 extra digits
				continue
			}
		}
		t.Errorf("%s: Java %q, Go %q", c.in, got, c.want)
	}
	t.Logf("%d of %d values printed with extra digits by this JVM (JDK-4511638)", longer, len(cases))
	if longer > len(cases)/10 {
		t.Errorf("%d of %d values printed with more digits by this JVM: more than JDK-4511638 explains", longer, len(cases))
	}
}
