-- Argo CD health check for pgbranch.io/Endpoint (docs/gitops.md).
-- Argo CD runs it in gopher-lua (Lua 5.1) with only the base, table and a safe os library: no
-- string library, so no string.* and no ("x"):method() calls; `obj` is the live object and the
-- script returns {status = ..., message = ...}.
-- Phases and condition reasons are those of operator/control/endpoint_reconciler.cc (and the
-- local-mode controller's PageserverReachable condition):
--   Healthy      Ready=True, phase Running and status.observedGeneration == metadata.generation
--   Suspended    scaled to zero (phase Suspended): the next connection wakes it
--   Progressing  no status yet, observedGeneration behind, Starting, Suspending, waiting for its
--                branch (BranchNotReady), being deleted
--   Degraded     Conflict (a second read-write endpoint on the branch), ComputeFailed (phase
--                Failed), the compute cannot reach the pageserver (phase Degraded)
local hs = {}

local function condition(status, ctype)
  if status == nil or status.conditions == nil then
    return nil
  end
  for _, c in ipairs(status.conditions) do
    if c.type == ctype then
      return c
    end
  end
  return nil
end

-- "Reason: message", tolerating either part missing.
local function describe(c)
  local reason = c.reason or ""
  local message = c.message or ""
  if reason == "" then
    return message
  end
  if message == "" then
    return reason
  end
  return reason .. ": " .. message
end

local generation = tonumber(obj.metadata.generation) or 0
local status = obj.status
local ready = condition(status, "Ready")

if obj.metadata.deletionTimestamp ~= nil then
  hs.status = "Progressing"
  hs.message = "Being deleted: the operator stops the compute"
  return hs
end

if status == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the pgbranch operator to start the endpoint"
  return hs
end

local phase = status.phase or ""

-- A condition set for an older spec says nothing about the current one.
local function current(c)
  local seen = tonumber(c.observedGeneration)
  return seen == nil or seen >= generation
end

local pageserver = condition(status, "PageserverReachable")
if phase == "Degraded" or (pageserver ~= nil and pageserver.status == "False") then
  hs.status = "Degraded"
  hs.message = "The compute cannot reach the pageserver: "
    .. ((pageserver and pageserver.message) or status.message or "unreachable")
  return hs
end

if ready ~= nil and ready.status == "False" and current(ready) then
  if ready.reason == "Conflict" or phase == "Conflict" then
    hs.status = "Degraded"
  elseif ready.reason == "ComputeFailed" or phase == "Failed" then
    hs.status = "Degraded"
    local restarts = tonumber(status.restarts) or 0
    if restarts > 0 then
      hs.message = describe(ready) .. " (restarts: " .. tostring(restarts) .. ")"
      return hs
    end
  else
    hs.status = "Progressing"
  end
  hs.message = describe(ready)
  return hs
end

local observed = tonumber(status.observedGeneration) or 0
if observed < generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to apply generation " .. tostring(generation)
    .. " (status describes generation " .. tostring(observed) .. ")"
  return hs
end
if phase == "Suspending" then
  hs.status = "Progressing"
  hs.message = "Suspending: stopping the compute"
  return hs
end
if phase == "Starting" then
  hs.status = "Progressing"
  hs.message = "Starting: starting PostgreSQL"
  return hs
end
if ready == nil or ready.status ~= "True" then
  hs.status = "Progressing"
  hs.message = "Waiting for the Ready condition"
  if ready ~= nil then
    hs.message = hs.message .. " (" .. describe(ready) .. ")"
  end
  return hs
end
if phase == "Suspended" then
  hs.status = "Suspended"
  hs.message = "Scaled to zero: " .. (ready.message or "the next connection wakes it")
  return hs
end

hs.status = "Healthy"
hs.message = "Running: " .. (ready.message or "")
if status.host ~= nil and status.port ~= nil then
  hs.message = hs.message .. "; connect to " .. status.host .. ":" .. tostring(status.port)
end
if status.secretName ~= nil then
  hs.message = hs.message .. " with the credentials in Secret " .. status.secretName
end
return hs
