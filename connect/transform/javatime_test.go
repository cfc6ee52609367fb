package transform

import (
	"testing"
	"time"
)

func TestJavaDateFormat(t *testing.T) {
	at := time.Date(2024, 2, 9, 7, 5, 3, 45e6, time.UTC)
	for _, tc := range []struct {
		pattern, want string
	}{
		{"yyyyMMdd", "20240209"},
		{"yyyy-MM-dd'T'HH:mm:ss.SSS'Z'", "2024-02-09T07:05:03.045Z"},
		{"yy/M/d h:mm a", "24/2/9 7:05 AM"},
		{"EEE, dd MMM yyyy HH:mm:ss Z", "Fri, 09 Feb 2024 07:05:03 +0000"},
		{"EEEE MMMM d 'o''clock' ''", "Friday February 9 o'clock '"},
		{"D u X", "40 5 Z"},
	} {
		f, err := newJavaDateFormat(tc.pattern)
		if err != nil {
			t.Fatalf("%s: %v", tc.pattern, err)
		}
		got := f.Format(at)
		if got != tc.want {
			t.Errorf("%s: %q, want %q", tc.pattern, got, tc.want)
		}
	}
	for _, tc := range []struct {
		pattern, in string
		want        time.Time
	}{
		{"yyyyMMddHHmm", "202402090705", time.Date(2024, 2, 9, 7, 5, 0, 0, time.UTC)},
		{"yyyy-MM-dd HH:mm:ss.SSSXXX", "2024-02-09 09:05:03.045+02:00", at},
		{"dd MMM yyyy hh:mm a", "09 feb 2024 07:05 pm", time.Date(2024, 2, 9, 19, 5, 0, 0, time.UTC)},
		{"yyyy-MM-dd", "2024-02-30", time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)}, // lenient, as Java
	} {
		f, _ := newJavaDateFormat(tc.pattern)
		got, err := f.Parse(tc.in)
		if err != nil || !got.Equal(tc.want) {
			t.Errorf("%s %q: %v %v, want %v", tc.pattern, tc.in, got, err, tc.want)
		}
	}
	if _, err := newJavaDateFormat("yyyy-MM-dd'T"); err == nil {
		t.Error("unterminated quote accepted")
	}
	if _, err := newJavaDateFormat("yyyy-bb"); err == nil {
		t.Error("illegal letter accepted")
	}
}
