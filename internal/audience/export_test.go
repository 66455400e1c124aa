package audience

// VisitAlways makes e visit the candidates of every "did it in the window" condition;
// VisitNever makes it unite the days instead. Tests use them to hold both ways to the same
// answers.
func VisitAlways(e *Engine) { e.visitRatio = 0 }

// VisitNever: see VisitAlways.
func VisitNever(e *Engine) { e.visitRatio = 1 << 20 }
