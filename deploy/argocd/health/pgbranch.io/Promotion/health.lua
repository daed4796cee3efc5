-- Argo CD health check for pgbranch.io/Promotion (docs/promotion.md, docs/gitops.md).
-- Argo CD runs it in gopher-lua (Lua 5.1) with only the base, table and a safe os library: no
-- string library, so no string.* and no ("x"):method() calls; `obj` is the live object and the
-- script returns {status = ..., message = ...}.
-- Phases are those of operator/control/promotion_reconciler.cc. A Promotion runs once:
--   Progressing  no status yet, Pending, Rehearsing, Applying, being deleted
--   Healthy      Succeeded (the parent has the migration; the restore point is the way back)
--   Degraded     Failed (refused, the rehearsal or a check failed, or the apply failed): the
--                operator does not retry; fix the cause and create a new Promotion
local hs = {}

local status = obj.status

if obj.metadata.deletionTimestamp ~= nil then
  hs.status = "Progressing"
  hs.message = "Being deleted (its restore point stays)"
  return hs
end

if status == nil or status.phase == nil or status.phase == "" then
  hs.status = "Progressing"
  hs.message = "Waiting for the pgbranch operator to start the promotion"
  return hs
end

local message = status.message or ""

if status.phase == "Succeeded" then
  hs.status = "Healthy"
  hs.message = message
  return hs
end

if status.phase == "Failed" then
  hs.status = "Degraded"
  if status.reason ~= nil and status.reason ~= "" then
    hs.message = status.reason .. ": " .. message
  else
    hs.message = message
  end
  return hs
end

-- Pending, Rehearsing, Applying (and any phase a newer operator adds): still at work.
hs.status = "Progressing"
hs.message = status.phase
if message ~= "" then
  hs.message = status.phase .. ": " .. message
end
return hs
