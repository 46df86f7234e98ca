package authz

// DPoPHTU builds the htu that a proof for a request must have.
var DPoPHTU = dpopHTU
