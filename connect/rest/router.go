package rest

import (
	"net/http"
	"net/url"
	"strings"
)

// route is one method and path pattern. Pattern segments in braces bind a
// path parameter; params are passed to the handler in order.
type route struct {
	method  string
	pattern []string
	fn      handlerFunc
	health  bool // bounded by the health timeout, not the request timeout
}

// router matches a request to a route. It exists, rather than
// http.ServeMux, because unknown paths and wrong methods must answer
// Kafka's JSON error bodies, and ServeMux writes plain text for both.
type router struct {
	routes []route
}

// add registers a route and returns it for flags to be set (the pointer is
// good until the next add).
func (rt *router) add(method, pattern string, fn handlerFunc) *route {
	rt.routes = append(rt.routes, route{method: method, pattern: splitPattern(pattern), fn: fn})
	return &rt.routes[len(rt.routes)-1]
}

func splitPattern(p string) []string {
	p = strings.Trim(p, "/")
	if p == "" {
		return nil
	}
	return strings.Split(p, "/")
}

// match finds the route for r. A path that matches no pattern gives
// found=false; a path that matches only under other methods gives the
// allowed methods instead of a route.
func (rt *router) match(r *http.Request) (rte *route, params []string, found bool, allowed []string) {
	segs, ok := splitPath(r.URL.EscapedPath())
	if !ok {
		return nil, nil, false, nil
	}
	method := r.Method
	if method == http.MethodHead {
		method = http.MethodGet
	}
	for i := range rt.routes {
		cand := &rt.routes[i]
		p, ok := matchSegments(cand.pattern, segs)
		if !ok {
			continue
		}
		found = true
		if cand.method == method {
			return cand, p, true, nil
		}
		allowed = append(allowed, cand.method)
	}
	return nil, nil, found, allowed
}

// splitPath splits an escaped path into unescaped segments, so that a
// connector name holding an escaped "/" stays one segment. One trailing
// slash is tolerated, as Kafka's server does.
func splitPath(escaped string) ([]string, bool) {
	escaped = strings.TrimPrefix(escaped, "/")
	escaped = strings.TrimSuffix(escaped, "/")
	if escaped == "" {
		return nil, true
	}
	raw := strings.Split(escaped, "/")
	segs := make([]string, len(raw))
	for i, s := range raw {
		u, err := url.PathUnescape(s)
		if err != nil {
			return nil, false
		}
		segs[i] = u
	}
	return segs, true
}

func matchSegments(pattern, segs []string) ([]string, bool) {
	if len(pattern) != len(segs) {
		return nil, false
	}
	var params []string
	for i, p := range pattern {
		if strings.HasPrefix(p, "{") {
			if segs[i] == "" {
				return nil, false
			}
			params = append(params, segs[i])
			continue
		}
		if p != segs[i] {
			return nil, false
		}
	}
	return params, true
}
