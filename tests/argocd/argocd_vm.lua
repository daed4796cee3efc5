-- Runs an Argo CD health.lua the way Argo CD does (util/lua/lua.go in argo-cd v3): the script is
-- a chunk run with the global `obj` (the live object) and `actionParams`, in a state that has only
-- the base, package, table and a safe os (time, date) library; its return value is the health.
-- Lua 5.1 (Debian lua5.1), the dialect of Argo CD's gopher-lua.
--
--   lua5.1 argocd_vm.lua HEALTH_LUA OBJECT_LUA COVERAGE_OUT
-- OBJECT_LUA is a chunk returning the object as a table. Prints "status\n<len>\nmessage";
-- exits 1 (with the error on stderr) if the script fails or returns something Argo CD refuses.
-- Appends the script's executed line numbers to COVERAGE_OUT, one per line.
local script_path, object_path, coverage_path = arg[1], arg[2], arg[3]

local object = assert(dofile(object_path))
local chunk, err = loadfile(script_path)
if chunk == nil then
  io.stderr:write("syntax error: " .. tostring(err) .. "\n")
  os.exit(1)
end

-- The script sees only what Argo CD opens (no string, math, io or debug library).
local env = {
  obj = object,
  actionParams = {},
  os = { time = os.time, date = os.date },
  table = {},
}
for _, name in ipairs({ "assert", "error", "getmetatable", "ipairs", "next", "pairs", "pcall",
  "print", "rawequal", "rawget", "rawset", "select", "setmetatable", "tonumber", "tostring",
  "type", "unpack", "xpcall", "require", "module", "_VERSION" }) do
  env[name] = _G[name]
end
for k, v in pairs(table) do
  env.table[k] = v
end
env._G = env
setfenv(chunk, env)

-- Strings have no methods either: Argo CD never opens the string library.
local string_meta = getmetatable("")
local string_index = string_meta.__index
string_meta.__index = nil

local covered = {}
debug.sethook(function(_, line)
  if debug.getinfo(2, "S").source == "@" .. script_path then
    covered[line] = true
  end
end, "l")
local ok, hs = pcall(chunk)
debug.sethook()
string_meta.__index = string_index

local out = io.open(coverage_path, "a")
for line in pairs(covered) do
  out:write(line, "\n")
end
out:close()

if not ok then
  io.stderr:write("runtime error: " .. tostring(hs) .. "\n")
  os.exit(1)
end
if type(hs) ~= "table" then
  io.stderr:write("the script returned " .. type(hs) .. ", Argo CD wants a table\n")
  os.exit(1)
end
local valid = { Healthy = true, Progressing = true, Degraded = true, Suspended = true,
  Missing = true, Unknown = true }
if not valid[hs.status] then
  io.stderr:write("invalid health status " .. tostring(hs.status) .. "\n")
  os.exit(1)
end
if hs.message ~= nil and type(hs.message) ~= "string" then
  io.stderr:write("message is a " .. type(hs.message) .. ", not a string\n")
  os.exit(1)
end
local message = hs.message or ""
io.write(hs.status, "\n", #message, "\n", message)
