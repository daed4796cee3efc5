-- Argo CD health check for pgbranch.io/Branch (docs/gitops.md).
-- Argo CD runs it in gopher-lua (Lua 5.1) with only the base, table and a safe os library: no
-- string library, so no string.* and no ("x"):method() calls; `obj` is the live object and the
-- script returns {status = ..., message = ...}.
-- Phases and condition reasons are those of operator/control/branch_reconciler.cc:
--   Healthy      Ready=True and status.observedGeneration == metadata.generation
--   Progressing  no status yet, observedGeneration behind, Ready=False while the operator works
--                (ParentNotReady, Resetting), being deleted
--   Degraded     phase Failed (StartPointOutOfRange, TimelineCreateFailed, TimelineMissing),
--                deletion blocked by child branches, a refused or failed reset (ResetRefused),
--                expired but kept for its child branches (Expired)
local hs = {}

-- Failures the operator will not fix by retrying: it writes them without raising
-- status.observedGeneration, so they are recognised by reason (or phase Failed).
local failures = {
  StartPointOutOfRange = true,
  TimelineCreateFailed = true,
  TimelineMissing = true,
}

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
  if ready ~= nil and ready.status == "False" and ready.reason == "HasChildren" then
    hs.status = "Degraded"
    hs.message = "Deletion blocked: " .. (ready.message or "child branches depend on it")
    return hs
  end
  hs.status = "Progressing"
  hs.message = "Being deleted: the operator removes its endpoints, then its timeline"
  return hs
end

if status == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the pgbranch operator to create the branch"
  return hs
end

-- A condition set for an older spec says nothing about the current one.
local function current(c)
  local seen = tonumber(c.observedGeneration)
  return seen == nil or seen >= generation
end

if ready ~= nil and ready.status == "False" and current(ready) then
  if failures[ready.reason] or status.phase == "Failed" then
    hs.status = "Degraded"
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
if ready == nil or ready.status ~= "True" then
  hs.status = "Progressing"
  hs.message = "Waiting for the Ready condition"
  if ready ~= nil then
    hs.message = hs.message .. " (" .. describe(ready) .. ")"
  end
  return hs
end

local refused = condition(status, "ResetRefused")
if refused ~= nil and refused.status == "True" then
  hs.status = "Degraded"
  hs.message = "Reset refused: " .. describe(refused)
  return hs
end
local expired = condition(status, "Expired")
if expired ~= nil and expired.status == "True" then
  hs.status = "Degraded"
  hs.message = "Expired: " .. (expired.message or "kept while it has child branches")
  return hs
end
if status.phase == "Expired" then
  hs.status = "Progressing"
  hs.message = "Expired: the operator deletes it with its endpoints"
  return hs
end

hs.status = "Healthy"
hs.message = "Ready: " .. (ready.message or "")
if status.expireTime ~= nil then
  hs.message = hs.message .. "; expires at " .. status.expireTime
end
return hs
