package transform

import "testing"

// BenchmarkChain is a typical CDC-ish chain on a struct value: what each
// record costs in the task loop when transforms are configured.
func BenchmarkChain(b *testing.B) {
	c, err := NewChain(cfg("transforms=ins,route,mask",
		"transforms.ins.type=InsertField$Value", "transforms.ins.topic.field=topic",
		"transforms.route.type=RegexRouter", "transforms.route.regex=(.*)", "transforms.route.replacement=$1-out",
		"transforms.mask.type=MaskField$Value", "transforms.mask.fields=ssn"))
	if err != nil {
		b.Fatal(err)
	}
	r := rec("t", user)
	r.ValueSchema = userSchema
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := c.Apply(r); err != nil {
			b.Fatal(err)
		}
	}
}
