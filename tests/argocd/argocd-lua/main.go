// Command argocd-lua runs an Argo CD health.lua on one object the way Argo CD v3 does it
// (util/lua/lua.go of github.com/argoproj/argo-cd/v3: runLua and ExecuteHealthLua), in the same
// interpreter, gopher-lua. The state starts without the standard libraries (SkipOpenLibs) and
// gets only package, base, table and Argo CD's safe os library (package argocdlua, a copy of
// util/lua/oslib_safe.go that tests/argocd/health_gopher_test.sh takes from the argo-cd
// module). The object is the global obj (decodeValue below mirrors Argo CD's), actionParams is
// empty, and the script has one second. The returned table is encoded to JSON with
// layeh.com/gopher-json and read as a health status.
//
// Usage:
//
//	argocd-lua HEALTH_LUA OBJECT_JSON
//
// It prints "status\n<len>\nmessage" like argocd_vm.lua, or exits 1 with the error on stderr.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	lua "github.com/yuin/gopher-lua"
	luajson "layeh.com/gopher-json"

	"pgbranch.io/argocd-lua/argocdlua"
)

// decodeValue turns a decoded JSON value into a Lua value as Argo CD's decodeValue does.
func decodeValue(l *lua.LState, value any) lua.LValue {
	switch v := value.(type) {
	case bool:
		return lua.LBool(v)
	case float64:
		return lua.LNumber(v)
	case string:
		return lua.LString(v)
	case json.Number:
		return lua.LString(v)
	case int64:
		return lua.LNumber(v)
	case []any:
		arr := l.CreateTable(len(v), 0)
		for _, item := range v {
			arr.Append(decodeValue(l, item))
		}
		return arr
	case map[string]any:
		tbl := l.CreateTable(0, len(v))
		for key, item := range v {
			tbl.RawSetH(lua.LString(key), decodeValue(l, item))
		}
		return tbl
	case nil:
		return lua.LNil
	}
	panic(fmt.Sprintf("cannot decode %T", value))
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	os.Exit(1)
}

func main() {
	if len(os.Args) != 3 {
		fail("usage: argocd-lua HEALTH_LUA OBJECT_JSON")
	}
	script, err := os.ReadFile(os.Args[1])
	if err != nil {
		fail("%v", err)
	}
	raw, err := os.ReadFile(os.Args[2])
	if err != nil {
		fail("%v", err)
	}
	var obj map[string]any
	if err := json.Unmarshal(raw, &obj); err != nil {
		fail("%s: %v", os.Args[2], err)
	}

	l := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer l.Close()
	for _, pair := range []struct {
		n string
		f lua.LGFunction
	}{
		{lua.LoadLibName, lua.OpenPackage},
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
		{lua.OsLibName, argocdlua.OpenSafeOs},
	} {
		if err := l.CallByParam(lua.P{Fn: l.NewFunction(pair.f), NRet: 0, Protect: true},
			lua.LString(pair.n)); err != nil {
			fail("opening %s: %v", pair.n, err)
		}
	}
	l.PreloadModule(lua.OsLibName, argocdlua.SafeOsLoader)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	l.SetContext(ctx)
	l.SetGlobal("actionParams", l.CreateTable(0, 0))
	l.SetGlobal("obj", decodeValue(l, obj))
	if err := l.DoString(string(script)); err != nil {
		fail("runtime error: %v", err)
	}

	ret := l.Get(-1)
	if ret.Type() != lua.LTTable {
		fail("the script returned %s, Argo CD wants a table", ret.Type())
	}
	encoded, err := luajson.Encode(ret)
	if err != nil {
		fail("encoding the result: %v", err)
	}
	var hs struct {
		Status  string `json:"status"`
		Message string `json:"message"`
	}
	if err := json.Unmarshal(encoded, &hs); err != nil {
		fail("the result %s is not a health status: %v", encoded, err)
	}
	switch hs.Status {
	case "Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown":
	default:
		fail("invalid health status %q", hs.Status)
	}
	fmt.Printf("%s\n%d\n%s", hs.Status, len(hs.Message), hs.Message)
}
