"""Reporting over evaluation runs (numpy, PyYAML, Pillow; matplotlib only for the HTML figures).

Modules:
    runs            load and validate a run directory (errors name the file and line)
    paired          pure paired statistics: bootstrap CI over prompts, sign-flip p-value, McNemar
    published       strict loader of leaderboards/published.yaml (published numbers with provenance)
    leaderboard     markdown leaderboard (pure function of runs + published numbers)
    compare         paired comparison of two runs; compare_render prints it
    gate            the CI regression gate behind ``rtdmd-bench check``
    html_report     self-contained HTML report; plots and html_assets support it
    fmt             number/markdown formatting shared by the above
"""
