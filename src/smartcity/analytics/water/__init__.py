"""Water leakage in district metered areas: minimum night flow, leakage after legitimate night
use, bursts and rising leaks, the areas ranked. See docs/analytics.md, "Water leakage"."""
