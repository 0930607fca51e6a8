-- Argo CD health check for cj.huleedu.io/CJBatch (resource.customizations.health.cj.huleedu.io_CJBatch).
-- Conditions are the truth, status.phase the summary (docs/gitops.md):
--   Healthy      phase Succeeded
--   Degraded     phase Failed, or InvalidSpec=True (the spec needs fixing)
--   Suspended    Progressing=False with reason Suspended (spec.suspend: true)
--   Progressing  everything else: no status yet, a generation the operator has not seen,
--                waiting for its pool (PoolReady=False), Pending/Preparing/Scoring/Comparing/Finalizing
-- Uses only Lua's base library (Argo CD opens no string/math library by default).
local hs = {}

local function condition(t)
  if obj.status == nil or obj.status.conditions == nil then
    return nil
  end
  for _, c in ipairs(obj.status.conditions) do
    if c.type == t then
      return c
    end
  end
  return nil
end

local function text(c, fallback)
  if c ~= nil and c.message ~= nil and c.message ~= "" then
    return c.message
  end
  return fallback
end

if obj.status == nil or obj.status.observedGeneration == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to pick up the batch"
  return hs
end
if obj.metadata.generation ~= nil and obj.status.observedGeneration < obj.metadata.generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. obj.metadata.generation
  return hs
end

local phase = obj.status.phase
local progress = ""
if obj.status.progress ~= nil then
  progress = " (" .. obj.status.progress .. " comparisons)"
end

if phase == "Succeeded" then
  hs.status = "Healthy"
  hs.message = text(condition("Succeeded"), "Succeeded") .. progress
  return hs
end
if phase == "Failed" then
  hs.status = "Degraded"
  hs.message = text(condition("Succeeded"), "Failed") .. progress
  return hs
end
local invalid = condition("InvalidSpec")
if invalid ~= nil and invalid.status == "True" then
  hs.status = "Degraded"
  hs.message = text(invalid, "The spec is invalid")
  return hs
end
local progressing = condition("Progressing")
if progressing ~= nil and progressing.status == "False" and progressing.reason == "Suspended" then
  hs.status = "Suspended"
  hs.message = text(progressing, "spec.suspend is true")
  return hs
end
local pool = condition("PoolReady")
if pool ~= nil and pool.status == "False" then
  hs.status = "Progressing"
  hs.message = "Waiting for the pool: " .. text(pool, "not Ready")
  return hs
end
hs.status = "Progressing"
if phase == nil then
  phase = "Pending"
end
hs.message = phase .. progress .. ": " .. text(progressing, "in progress")
return hs
