-- Argo CD health check for cj.huleedu.io/LLMProviderPool (resource.customizations.health.cj.huleedu.io_LLMProviderPool).
--   Healthy      Ready=True (the API key Secret exists and the provider accepted the key)
--   Degraded     Degraded=True or Ready=False (missing Secret or key, refused key, unreachable
--                provider; the reason and message say which)
--   Progressing  no status yet, or a generation the operator has not seen
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
  hs.message = "Waiting for the operator to check the pool"
  return hs
end
if obj.metadata.generation ~= nil and obj.status.observedGeneration < obj.metadata.generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. obj.metadata.generation
  return hs
end

local ready = condition("Ready")
local degraded = condition("Degraded")
if degraded ~= nil and degraded.status == "True" then
  hs.status = "Degraded"
  hs.message = (degraded.reason or "Degraded") .. ": " .. text(degraded, "")
  return hs
end
if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = text(ready, "Ready")
  return hs
end
if ready ~= nil and ready.status == "False" then
  hs.status = "Degraded"
  hs.message = (ready.reason or "NotReady") .. ": " .. text(ready, "")
  return hs
end
hs.status = "Progressing"
hs.message = "Waiting for the operator to check the pool"
return hs
