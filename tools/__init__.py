"""Offline tools: run the program under mocks, judge it with the policy pack, render a preview."""
