from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from integrations.api.serializers import ChannelOutput
from integrations.authentication import request_channel
from integrations.permissions import IsChannel


class ChannelMeApi(APIView):
    """The calling channel, as its API key identifies it: a cheap way to check a key and its scopes."""

    permission_classes = [IsChannel]

    @extend_schema(operation_id="channel_me", responses=ChannelOutput, tags=["channel"])
    def get(self, request: Request) -> Response:
        return Response(ChannelOutput(request_channel(request), context={"request": request}).data)
