"""Evaluations that compare SAEs the way the field does: SAELens/SAEBench core metrics, k-sparse probing, absorption."""
