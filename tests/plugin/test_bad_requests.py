"""Every bad request to every route group gets a 4xx JSON error naming what is wrong.

One table for all groups: ``(logdir, url, status, mentions)``, where ``logdir`` picks the test client
(``basic_client`` or ``views_client``, tests/plugin/conftest.py) and ``mentions`` is a word the error
message must contain (the argument at fault). The fuzz test (test_fuzz.py) adds random requests.
"""

import urllib.parse

import pytest
from logdirs import (
    ACTIVATION_LAYER,
    BASIC_XSS_RUN,
    CALLBACK_RUN,
    DREAM_LAYER,
    DREAM_RUN,
    LAYER,
    VIEWS_XSS_RUN,
    P,
    assert_error,
)
from support import EXACT_RUN

E = f"{P}/api/embedding"
T = f"{P}/api/top_images/examples"
G = f"{P}/api/gradcam"
CAM = f"run={CALLBACK_RUN}&layer=features"  # the default Grad-CAM layer
K = f"{P}/api/filters/kernels"
PAT = f"{P}/api/patterns"
EXACT_FILTER = (
    f"{PAT}/filter?run={EXACT_RUN}&layer=conv"  # support.write_exact_run's patterns of filters 2 and 5
)
R = f"{P}/api/runs"
DREAM = f"{P}/api/patterns/dream"
BOTH = "features.conv3%2Bfeatures.conv4"  # the dream of two layers, URL-quoted
PATTERN_LAYERS = "layers with patterns: ['features.conv2']"
DREAM_LAYERS = "layers with dream: ['broken', 'features.conv3+features.conv4']"
ACT = f"{R}/image?run={CALLBACK_RUN}&kind=activations&layer={ACTIVATION_LAYER}"

BAD_REQUESTS = [
    # filters
    ("basic", f"{K}?layer={LAYER}&step=1", 400, "run"),
    ("basic", f"{K}?run=nope&layer={LAYER}&step=1", 404, "run"),
    ("basic", f"{K}?run={CALLBACK_RUN}&step=1", 400, "layer"),
    ("basic", f"{K}?run={CALLBACK_RUN}&layer=features.conv9&step=1", 404, "layer"),
    ("basic", f"{K}?run={CALLBACK_RUN}&layer={LAYER}", 400, "step"),
    *[
        ("basic", f"{K}?run={CALLBACK_RUN}&layer={LAYER}&step={step}", 400, "step")
        for step in ("abc", "1.5", "1e3", "-1", "%201", "0x10", 2**63, "9" * 5000)
    ],
    ("basic", f"{K}?run={CALLBACK_RUN}&layer={LAYER}&step=3", 404, "step"),
    ("basic", f"{K}?run={CALLBACK_RUN}&layer={LAYER}&step=999999", 404, "step"),
    ("basic", f"{K}?run={CALLBACK_RUN}&layer={LAYER}&step=1&count=0", 400, "count"),
    ("basic", f"{K}?run={CALLBACK_RUN}&layer={LAYER}&step=1&count=99999999999", 400, "count"),
    ("basic", f"{K}?run={'r' * 5000}&layer={LAYER}&step=1", 400, "run"),
    ("basic", f"{P}/api/filters/smoothness?run={BASIC_XSS_RUN}&layer=c<b>1</b>", 404, "layer"),
    # activations
    ("basic", f"{P}/api/activations/step?run={CALLBACK_RUN}&layer=features.conv2&step=1", 404, "layer"),
    # dead
    *[
        ("basic", f"{P}/api/dead/rates?run=exact&layer=conv&threshold={threshold}", 400, "threshold")
        for threshold in ("nan", "2", "abc")
    ],
    ("basic", f"{P}/api/dead/fractions?run={BASIC_XSS_RUN}&threshold=-0.5", 400, "threshold"),
    # gradcam
    ("views", f"{G}/step?layer=features&step=2", 400, "run"),
    ("views", f"{G}/step?run=nope&layer=features&step=2", 404, "run"),
    ("views", f"{G}/step?run={CALLBACK_RUN}&step=2", 400, "layer"),
    ("views", f"{G}/step?run={CALLBACK_RUN}&layer=features.conv1&step=2", 404, "layer"),
    ("views", f"{G}/step?{CAM}", 400, "step"),
    ("views", f"{G}/step?{CAM}&step=3", 404, "nearest logged step is 2"),
    ("views", f"{G}/step?{CAM}&step=-2", 400, "step"),
    ("views", f"{G}/step?{CAM}&step=2.0", 400, "step"),
    ("views", f"{G}/maps?{CAM}&step=5", 404, "step"),
    ("views", f"{G}/maps?run={CALLBACK_RUN}&layer=features.conv2&step=2", 404, "layer"),
    ("views", f"{G}/image?{CAM}", 400, "index"),
    ("views", f"{G}/image?{CAM}&index=4", 404, "index"),
    ("views", f"{G}/image?{CAM}&index=x", 400, "index"),
    ("views", f"{G}/image?{CAM}&index=0&limit=0", 400, "limit"),
    ("views", f"{G}/image?{CAM}&index=0&limit=501", 400, "limit"),
    ("views", f"{G}/nope?{CAM}", 404, "unknown route"),
    # patterns
    ("views", f"{PAT}/step?run={CALLBACK_RUN}&layer=features.conv3&step=2", 404, PATTERN_LAYERS),
    ("views", f"{PAT}/step?run={CALLBACK_RUN}&layer=features.conv2&step=1", 404, "step"),
    ("views", f"{PAT}/filter?run={CALLBACK_RUN}&layer=features.conv2&step=2", 400, "channel"),
    ("views", f"{PAT}/filter?run={CALLBACK_RUN}&layer=features.conv2&step=2&channel=4", 404, "channel"),
    ("views", f"{EXACT_FILTER}&step=9&channel=0", 404, "filters with patterns: [2, 5]"),
    ("views", f"{EXACT_FILTER}&step=9&channel=-5", 400, "channel"),
    ("views", f"{EXACT_FILTER}&step=10&channel=5", 404, "step"),
    # patterns (dream)
    ("basic", f"{DREAM}?layer={DREAM_LAYER}", 400, "run"),
    ("basic", f"{DREAM}?run={DREAM_RUN}", 400, "layer"),
    ("basic", f"{DREAM}?run={DREAM_RUN}&layer=features.conv3", 404, DREAM_LAYERS),
    ("basic", f"{DREAM}?run={DREAM_RUN}&layer={BOTH}&step=abc", 400, "step"),
    ("basic", f"{DREAM}?run={DREAM_RUN}&layer={BOTH}&step=5", 404, "nearest logged step is 0"),
    ("basic", f"{DREAM}?run=exact&layer=conv", 404, "run 'exact' has no 'dream' data for layer 'conv'"),
    # embedding
    ("views", f"{E}/points?run={CALLBACK_RUN}&layer=features.conv2&step=2", 404, "layer"),
    ("views", f"{E}/points?run={CALLBACK_RUN}&layer=classifier&step=1", 404, "step"),
    ("views", f"{E}/points?run={CALLBACK_RUN}&layer=classifier", 400, "step"),
    ("views", f"{E}/sprites", 400, "run"),
    ("views", f"{E}/sprites?run={urllib.parse.quote(VIEWS_XSS_RUN)}", 404, "sprites"),
    ("views", f"{T}?run={CALLBACK_RUN}&layer=features.conv3&step=6&channel=8", 404, "channel"),
    ("views", f"{T}?run={CALLBACK_RUN}&layer=features.conv3&step=6&channel=1e3", 400, "channel"),
    ("views", f"{T}?run={CALLBACK_RUN}&layer=features.conv3&step=5&channel=0", 404, "step"),
    ("views", f"{T}?run={CALLBACK_RUN}&layer=features.conv5&step=6", 404, "layer"),
    # runs
    ("basic", f"{R}/steps?run={CALLBACK_RUN}&kind=weights&layer={LAYER}", 400, "kind"),
    ("basic", f"{R}/steps?run={CALLBACK_RUN}&layer={LAYER}", 400, "kind"),
    ("basic", f"{R}/image?run={CALLBACK_RUN}&kind=kernels&layer={LAYER}&step=1&index=0", 400, "kind"),
    ("basic", f"{ACT}&step=3&index=0", 404, "step"),
    ("basic", f"{ACT}&step=1&index=3", 404, "index"),
    ("basic", f"{ACT}&step=1&index=-1", 400, "index"),
    ("basic", f"{ACT}&step=1", 400, "index"),
    ("basic", f"{R}/image?run=exact&kind=probe&step=1&index=0", 404, "probe"),
    ("basic", f"{R}/image?run={DREAM_RUN}&kind=dream&layer={BOTH}&step=0&index=2", 404, "index"),
    # runs (views)
    ("views", f"{R}/image?run={EXACT_RUN}&kind=sprites&step=9&index=2", 404, "index"),
    ("views", f"{R}/image?run={EXACT_RUN}&kind=gradcam_maps&layer=conv&step=10&index=0", 400, "kind"),
]


@pytest.mark.parametrize(
    "logdir,url,status,mentions",
    BAD_REQUESTS,
    ids=[f"{url.split('/api/')[-1].split('?')[0]}-{i:02d}" for i, (_, url, _, _) in enumerate(BAD_REQUESTS)],
)
def test_bad_requests_get_a_4xx_json_error_naming_the_problem(request, logdir, url, status, mentions):
    assert_error(request.getfixturevalue(f"{logdir}_client"), url, status, mentions)
