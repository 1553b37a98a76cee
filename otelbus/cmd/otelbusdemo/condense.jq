# Condenses otelbusdemo's output: one line per span (name, kind, parent span
# id, attributes, events, status) and per metric point (attributes, then the
# value, or a histogram's count and sum).
def attrs: (. // []) | map({(.Key): .Value.Value}) | add // {};
if has("SpanContext") then
  {span: .Name, kind: ({"4": "producer", "5": "consumer"}[.SpanKind | tostring] // .SpanKind), id: .SpanContext.SpanID, parent: .Parent.SpanID,
   attrs: (.Attributes | attrs), status: .Status}
  + (if .Events then {events: (.Events | map({(.Name): (.Attributes | attrs)}))} else {} end)
else
  .ScopeMetrics[].Metrics[] | .Name as $n | .Unit as $u | .Data.DataPoints[]
  | {metric: $n, unit: $u, attrs: (.Attributes | attrs)}
    + (if has("Count") then {count: .Count, sum: .Sum} else {value: .Value} end)
end
