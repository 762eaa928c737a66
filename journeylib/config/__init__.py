"""Typed, validated configuration: journey definitions (and, with them, their conditions and outcomes)."""

from journeylib.config.journey import AllOf, AnyOf, Condition, Conventions, JourneyDefinition, Outcome, Stage

__all__ = ["AllOf", "AnyOf", "Condition", "Conventions", "JourneyDefinition", "Outcome", "Stage"]
