"""SuiteCRM (V8 JSON:API): the connector (:mod:`.connector`) and its sandbox (:mod:`.sandbox`)."""
