package audience

// VisitAlways makes e visit the candidates of every "did it in the window" condition;
// VisitNever makes it unite the days instead. Tests use them to hold both ways to the same
// answers.
func VisitAlways(e *Engine) { e.visitRatio = 0 }

// VisitNever: see VisitAlways.
func VisitNever(e *Engine) { e.visitRatio = 1 << 20 }

// ReloadModelsWhole makes e read every model change as a whole model; ReloadModelsPartly
// makes it read only the customers a change names, however many. Tests hold both ways to the
// same answers.
func ReloadModelsWhole(e *Engine) { e.modelReloadShare = -1 }

// ReloadModelsPartly: see ReloadModelsWhole.
func ReloadModelsPartly(e *Engine) { e.modelReloadShare = 1e9 }
