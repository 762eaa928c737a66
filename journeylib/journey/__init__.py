"""The journey map: stages and milestones, funnels, paths and transitions, friction, suggested stages."""
