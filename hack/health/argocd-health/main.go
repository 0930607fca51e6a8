// argocd-health: runs an Argo CD resource health check (Lua) on one Kubernetes object the way
// Argo CD does (argo-cd util/lua: ExecuteHealthLua / runLua), with the same interpreter,
// github.com/yuin/gopher-lua:
//
//   - a fresh Lua state without the standard libraries, then only package, base and table
//     opened (Argo CD adds a "safe" os library with time functions; our scripts do not use it),
//     so string.*, math.* and io.* are absent as they are in Argo CD unless useOpenLibs is set;
//
//   - the object, decoded from JSON, as the global table `obj` (maps → tables, arrays → 1-based
//     tables, numbers → numbers, null → nil);
//
//   - a one-second timeout;
//
//   - the returned table encoded to JSON and read as {status, message}; a status that is not one
//     of Healthy, Progressing, Degraded, Suspended, Missing, Unknown becomes Unknown.
//
//     argocd-health script.lua < object.json   →   {"status":"Healthy","message":"..."}
//
// Exit code 2 when the script fails (Argo CD then reports the error as the resource's health).
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"time"

	lua "github.com/yuin/gopher-lua"
	"sigs.k8s.io/yaml"
)

var codes = map[string]bool{
	"Healthy": true, "Progressing": true, "Degraded": true, "Suspended": true, "Missing": true, "Unknown": true,
}

func main() {
	if len(os.Args) != 2 {
		fail(fmt.Errorf("usage: argocd-health script.lua < object.json"))
	}
	script, err := os.ReadFile(os.Args[1])
	if err != nil {
		fail(err)
	}
	in, err := io.ReadAll(os.Stdin)
	if err != nil {
		fail(err)
	}
	obj := map[string]interface{}{}
	if err := yaml.Unmarshal(in, &obj); err != nil {
		fail(fmt.Errorf("stdin is not a JSON/YAML object: %w", err))
	}

	l := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer l.Close()
	for _, lib := range []struct {
		name string
		fn   lua.LGFunction
	}{
		{lua.LoadLibName, lua.OpenPackage},
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
	} {
		if err := l.CallByParam(lua.P{Fn: l.NewFunction(lib.fn), NRet: 0, Protect: true}, lua.LString(lib.name)); err != nil {
			fail(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	l.SetContext(ctx)
	l.SetGlobal("obj", decode(l, obj))
	if err := l.DoString(string(script)); err != nil {
		fail(err)
	}
	ret := l.Get(-1)
	if ret.Type() != lua.LTTable {
		fail(fmt.Errorf("the script returned %s, not a table", ret.Type()))
	}
	raw, err := json.Marshal(encode(ret))
	if err != nil {
		fail(err)
	}
	hs := struct {
		Status  string `json:"status"`
		Message string `json:"message,omitempty"`
	}{}
	if err := json.Unmarshal(raw, &hs); err != nil {
		fail(fmt.Errorf("the returned table is not {status, message}: %w", err))
	}
	if !codes[hs.Status] {
		hs = struct {
			Status  string `json:"status"`
			Message string `json:"message,omitempty"`
		}{"Unknown", "Lua returned an invalid health status"}
	}
	out, _ := json.Marshal(hs)
	fmt.Println(string(out))
}

// decode mirrors Argo CD's decodeValue.
func decode(l *lua.LState, v interface{}) lua.LValue {
	switch x := v.(type) {
	case nil:
		return lua.LNil
	case bool:
		return lua.LBool(x)
	case string:
		return lua.LString(x)
	case float64:
		return lua.LNumber(x)
	case int64:
		return lua.LNumber(x)
	case map[string]interface{}:
		t := l.NewTable()
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			t.RawSetString(k, decode(l, x[k]))
		}
		return t
	case []interface{}:
		t := l.NewTable()
		for _, e := range x {
			t.Append(decode(l, e))
		}
		return t
	default:
		return lua.LString(fmt.Sprint(x))
	}
}

// encode turns a Lua value into JSON-ready Go values (what Argo CD's luajson.Encode does for
// the health table: string keys → objects, 1..n keys → arrays).
func encode(v lua.LValue) interface{} {
	switch x := v.(type) {
	case lua.LBool:
		return bool(x)
	case lua.LNumber:
		return float64(x)
	case lua.LString:
		return string(x)
	case *lua.LTable:
		if n := x.MaxN(); n > 0 {
			arr := make([]interface{}, 0, n)
			for i := 1; i <= n; i++ {
				arr = append(arr, encode(x.RawGetInt(i)))
			}
			return arr
		}
		m := map[string]interface{}{}
		x.ForEach(func(k, val lua.LValue) { m[k.String()] = encode(val) })
		return m
	default:
		return nil
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "argocd-health:", err)
	os.Exit(2)
}
