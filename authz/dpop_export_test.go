package authz

// DPoPHTU builds the htu that a proof for a request must have.
var DPoPHTU = dpopHTU

// DPoPReplayKey is the hash under which a proof's jti is recorded.
var DPoPReplayKey = replayKey
