# Vendored from the official DVT repository (NeurIPS 2021, "Not All Images are Worth 16x16 Words:
# Dynamic Transformers for Efficient Image Recognition", arXiv 2105.15075):
#   https://github.com/blackfeather-wang/Dynamic-Vision-Transformer
#   file: timm/models/vision_transformer.py   commit: 22cc8951af0db59acdd414ba35dd87d6d793c868 (2021-11-25)
#   license: see ../README.md (DVT ships no license file; the file's own origin: timm 0.3.2, Apache-2.0).
# (the repository's BUNDLED timm 0.3.2, modified by DVT: Block / VisionTransformer take
# feature_reuse / relation_reuse and return (logits, features, relations); PatchEmbed has the
# k23 s23 p3 conv). Byte-identical below this header EXCEPT two import lines, whose targets are
# not vendored and are only used by code the fixtures never call (load_pretrained: pretrained=True
# factories; resnet26d / resnet50d: the hybrid vit_*_resnet* factories); they import pip timm's:
#   from .helpers import load_pretrained       -> from timm.models.helpers import load_pretrained
#   from .resnet import resnet26d, resnet50d   -> from timm.models.resnet import resnet26d, resnet50d
# `from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD` is left as is: it resolves to
# pip timm, whose values are the same (0.485, 0.456, 0.406) / (0.229, 0.224, 0.225); only _cfg uses
# them. `from .layers ...` and `from .registry ...` resolve to the vendored copies next to this
# file. The hard-coded `torch.zeros(B, 1, 48).cuda()` (Block.forward, upstream line 214) is left as
# is; the caller runs the model under ../cpu_shim.py.
# ---- upstream file follows ----
""" Vision Transformer (ViT) in PyTorch

A PyTorch implement of Vision Transformers as described in
'An Image Is Worth 16 x 16 Words: Transformers for Image Recognition at Scale' - https://arxiv.org/abs/2010.11929

The official jax code is released and available at https://github.com/google-research/vision_transformer

Status/TODO:
* Models updated to be compatible with official impl. Args added to support backward compat for old PyTorch weights.
* Weights ported from official jax impl for 384x384 base and small models, 16x16 and 32x32 patches.
* Trained (supervised on ImageNet-1k) my custom 'small' patch model to 77.9, 'base' to 79.4 top-1 with this code.
* Hopefully find time and GPUs for SSL or unsupervised pretraining on OpenImages w/ ImageNet fine-tune in future.

Acknowledgments:
* The paper authors for releasing code and weights, thanks!
* I fixed my class token impl based on Phil Wang's https://github.com/lucidrains/vit-pytorch ... check it out
for some einops/einsum fun
* Simple transformer style inspired by Andrej Karpathy's https://github.com/karpathy/minGPT
* Bert reference code checks against Huggingface Transformers and Tensorflow Bert

Hacked together by / Copyright 2020 Ross Wightman
"""
import torch
import torch.nn as nn
from torch import Tensor
from functools import partial
import numpy as np
import pdb

from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.models.helpers import load_pretrained
from .layers import DropPath, to_2tuple, trunc_normal_
from timm.models.resnet import resnet26d, resnet50d
from .registry import register_model


def _cfg(url='', **kwargs):
    return {
        'url': url,
        'num_classes': 1000, 'input_size': (3, 224, 224), 'pool_size': None,
        'crop_pct': .9, 'interpolation': 'bicubic',
        'mean': IMAGENET_DEFAULT_MEAN, 'std': IMAGENET_DEFAULT_STD,
        'first_conv': 'patch_embed.proj', 'classifier': 'head',
        **kwargs
    }


default_cfgs = {
    # patch models
    'vit_small_patch16_224': _cfg(
        url='https://github.com/rwightman/pytorch-image-models/releases/download/v0.1-weights/vit_small_p16_224-15ec54c9.pth',
    ),
    'vit_base_patch16_224': _cfg(
        url='https://github.com/rwightman/pytorch-image-models/releases/download/v0.1-vitjx/jx_vit_base_p16_224-80ecf9dd.pth',
        mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5),
    ),
    'vit_base_patch16_384': _cfg(
        url='https://github.com/rwightman/pytorch-image-models/releases/download/v0.1-vitjx/jx_vit_base_p16_384-83fb41ba.pth',
        input_size=(3, 384, 384), mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), crop_pct=1.0),
    'vit_base_patch32_384': _cfg(
        url='https://github.com/rwightman/pytorch-image-models/releases/download/v0.1-vitjx/jx_vit_base_p32_384-830016f5.pth',
        input_size=(3, 384, 384), mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), crop_pct=1.0),
    'vit_large_patch16_224': _cfg(
        url='https://github.com/rwightman/pytorch-image-models/releases/download/v0.1-vitjx/jx_vit_large_p16_224-4ee7a4dc.pth',
        mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)),
    'vit_large_patch16_384': _cfg(
        url='https://github.com/rwightman/pytorch-image-models/releases/download/v0.1-vitjx/jx_vit_large_p16_384-b3be5167.pth',
        input_size=(3, 384, 384), mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), crop_pct=1.0),
    'vit_large_patch32_384': _cfg(
        url='https://github.com/rwightman/pytorch-image-models/releases/download/v0.1-vitjx/jx_vit_large_p32_384-9b920ba8.pth',
        input_size=(3, 384, 384), mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), crop_pct=1.0),
    'vit_huge_patch16_224': _cfg(),
    'vit_huge_patch32_384': _cfg(input_size=(3, 384, 384)),
    # hybrid models
    'vit_small_resnet26d_224': _cfg(),
    'vit_small_resnet50d_s3_224': _cfg(),
    'vit_base_resnet26d_224': _cfg(),
    'vit_base_resnet50d_224': _cfg(),
}

class GELU(nn.Module):
    def forward(self, input: Tensor) -> Tensor:
        return torch.nn.functional.gelu(input)


class Mlp(nn.Module):
    def __init__(self, in_features, hidden_features=None, out_features=None, act_layer=GELU, drop=0.):
        super().__init__()
        out_features = out_features or in_features
        hidden_features = hidden_features or in_features
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.act = act_layer()
        self.fc2 = nn.Linear(hidden_features, out_features)
        self.drop = nn.Dropout(drop)

    def forward(self, x):
        x = self.fc1(x)
        x = self.act(x)
        x = self.drop(x)
        x = self.fc2(x)
        x = self.drop(x)
        return x


class Attention(nn.Module):
    def __init__(self, dim, num_heads=8, qkv_bias=False, qk_scale=None, attn_drop=0., proj_drop=0.):
        super().__init__()
        self.num_heads = num_heads
        head_dim = dim // num_heads
        # NOTE scale factor was wrong in my original version, can set manually to be compat with prev weights
        self.scale = qk_scale or head_dim ** -0.5

        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x, relations_to_be_reused):
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, C // self.num_heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]   # make torchscript happy (cannot use tensor as tuple)

        attn = (q @ k.transpose(-2, -1)) * self.scale
        if relations_to_be_reused is not None:

            attn = attn + relations_to_be_reused

        relation = attn

        attn = attn.softmax(dim=-1)
        attn = self.attn_drop(attn)

        x = (attn @ v).transpose(1, 2).reshape(B, N, C)
        x = self.proj(x)
        x = self.proj_drop(x)
        return x, relation


class Block(nn.Module):

    def __init__(self, dim, num_heads, mlp_ratio=4., qkv_bias=False, qk_scale=None, drop=0., attn_drop=0.,
                 drop_path=0., act_layer=GELU, norm_layer=nn.LayerNorm,
                 feature_reuse=False, relation_reuse=False):
        super().__init__()
        self.norm1 = norm_layer(dim)
        self.attn = Attention(
            dim, num_heads=num_heads, qkv_bias=qkv_bias, qk_scale=qk_scale, attn_drop=attn_drop, proj_drop=drop)
        # NOTE: drop path for stochastic depth, we shall see if this is better than dropout here
        self.drop_path = DropPath(drop_path) if drop_path > 0. else nn.Identity()
        # self.norm2 = norm_layer(dim)
        mlp_hidden_dim = int(dim * mlp_ratio)

        self.feature_reuse = feature_reuse
        self.relation_reuse = relation_reuse

        if self.feature_reuse:
            self.norm2 = norm_layer(dim + 48)
            self.mlp = Mlp(in_features=dim + 48, hidden_features=mlp_hidden_dim, out_features=dim,
                           act_layer=act_layer, drop=drop)
        else:
            self.norm2 = norm_layer(dim)
            self.mlp = Mlp(in_features=dim, hidden_features=mlp_hidden_dim, out_features=dim,
                           act_layer=act_layer, drop=drop)

        if self.feature_reuse:
            self.feature_resuse_mlp = nn.Sequential(
                norm_layer(dim),
                Mlp(in_features=dim, hidden_features=128, out_features=48, act_layer=act_layer, drop=drop)
            )

        # self.mlp = Mlp(in_features=dim, hidden_features=mlp_hidden_dim, act_layer=act_layer, drop=drop)
        # print(self)

    def forward(self, x, features_to_be_reused=None, relations_to_be_reused=None):

        identity = x
        x, relation = self.attn(self.norm1(x),relations_to_be_reused)
        x = identity + self.drop_path(x)

        identity = x

        if features_to_be_reused is not None:

            # print('feature ok')
            features_to_be_reused = self.feature_resuse_mlp(features_to_be_reused)

            feature_temp = features_to_be_reused[:, 1:, :]
            #
            # print(feature_temp.shape)
            # print(identity.size())
            # print((identity.size(1) - 1))

            B, new_HW, C = feature_temp.shape
            feature_temp = feature_temp.transpose(1, 2).reshape(B, C, int(np.sqrt(new_HW)), int(np.sqrt(new_HW)))


            if (identity.size(1) - 1) == 100:
                # print(feature_temp.shape)
                feature_temp = torch.nn.functional.interpolate(feature_temp, (14, 14), mode='nearest')
                # print(feature_temp.shape)
                feature_temp = torch.nn.functional.adaptive_avg_pool2d(feature_temp, (10, 10)).view(B, C, identity.size(1) - 1).transpose(1, 2)
                # print(feature_temp.shape)
            else:
                # print(feature_temp.shape)
                feature_temp = torch.nn.functional.interpolate(feature_temp, (20, 20), mode='nearest')
                # print(feature_temp.shape)
                feature_temp = torch.nn.functional.adaptive_avg_pool2d(feature_temp, (14, 14)).view(B, C, identity.size(1) - 1).transpose(1, 2)
                # print(feature_temp.shape)

            # print(feature_temp.size())

            # if self.reuse_with_cls_token:
            # feature_temp = torch.cat((features_to_be_reused[:, 0].view(B, 1, 48), feature_temp), dim=1)
            feature_temp = torch.cat((torch.zeros(B, 1, 48).cuda(), feature_temp), dim=1)
            # feature_temp = torch.cat((torch.zeros(B, 1, 48), feature_temp), dim=1)
            # print(feature_temp.shape)
            # x = x + feature_temp
            x = torch.cat((x, feature_temp), dim=2)
            # print(x.shape)

            # else:
            #     # x[:, 1:] = x[:, 1:] + feature_temp
            #     x[:, 1:] = torch.cat((x[:, 1:], feature_temp), dim=2)

        # pdb.set_trace()
        x = identity + self.drop_path(self.mlp(self.norm2(x)))
        return x, relation


class PatchEmbed(nn.Module):
    """ Image to Patch Embedding
    """
    def __init__(self, img_size=224, patch_size=16, in_chans=3, embed_dim=768):
        super().__init__()
        img_size = to_2tuple(img_size)
        patch_size = to_2tuple(patch_size)
        self.img_size = img_size
        self.patch_size = patch_size
        
        if patch_size[0] == 16 or patch_size[0] == 32:
            num_patches = (img_size[1] // patch_size[1]) * (img_size[0] // patch_size[0])
            self.num_patches = num_patches
            self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)
        else:
            num_patches = 100
            self.num_patches = num_patches
            self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=23, stride=23, padding=3)

    def forward(self, x):
        B, C, H, W = x.shape
        # FIXME look at relaxing size constraints
        assert H == self.img_size[0] and W == self.img_size[1], \
            f"Input image size ({H}*{W}) doesn't match model ({self.img_size[0]}*{self.img_size[1]})."
        x = self.proj(x).flatten(2).transpose(1, 2)
        # print(x.shape) #(2,49,384)
        # pdb.set_trace()
        return x


class HybridEmbed(nn.Module):
    """ CNN Feature Map Embedding
    Extract feature map from CNN, flatten, project to embedding dim.
    """
    def __init__(self, backbone, img_size=224, feature_size=None, in_chans=3, embed_dim=768):
        super().__init__()
        assert isinstance(backbone, nn.Module)
        img_size = to_2tuple(img_size)
        self.img_size = img_size
        self.backbone = backbone
        if feature_size is None:
            with torch.no_grad():
                # FIXME this is hacky, but most reliable way of determining the exact dim of the output feature
                # map for all networks, the feature metadata has reliable channel and stride info, but using
                # stride to calc feature dim requires info about padding of each stage that isn't captured.
                training = backbone.training
                if training:
                    backbone.eval()
                o = self.backbone(torch.zeros(1, in_chans, img_size[0], img_size[1]))[-1]
                feature_size = o.shape[-2:]
                feature_dim = o.shape[1]
                backbone.train(training)
        else:
            feature_size = to_2tuple(feature_size)
            feature_dim = self.backbone.feature_info.channels()[-1]
        self.num_patches = feature_size[0] * feature_size[1]
        self.proj = nn.Linear(feature_dim, embed_dim)

    def forward(self, x):
        x = self.backbone(x)[-1]
        x = x.flatten(2).transpose(1, 2)
        x = self.proj(x)
        return x


class VisionTransformer(nn.Module):
    """ Vision Transformer with support for patch or hybrid CNN input stage
    """
    def __init__(self, img_size=224, patch_size=16, in_chans=3, num_classes=1000, embed_dim=768, depth=12,
                 num_heads=12, mlp_ratio=4., qkv_bias=False, qk_scale=None, drop_rate=0., attn_drop_rate=0.,
                 drop_path_rate=0., hybrid_backbone=None, norm_layer=nn.LayerNorm,
                 feature_reuse=False, relation_reuse=False):
        super().__init__()
        self.num_classes = num_classes
        self.num_features = self.embed_dim = embed_dim  # num_features for consistency with other models

        self.feature_reuse = feature_reuse
        self.relation_reuse = relation_reuse

        if hybrid_backbone is not None:
            self.patch_embed = HybridEmbed(
                hybrid_backbone, img_size=img_size, in_chans=in_chans, embed_dim=embed_dim)
        else:
            self.patch_embed = PatchEmbed(
                img_size=img_size, patch_size=patch_size, in_chans=in_chans, embed_dim=embed_dim)
        num_patches = self.patch_embed.num_patches

        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, num_patches + 1, embed_dim))
        self.pos_drop = nn.Dropout(p=drop_rate)

        dpr = [x.item() for x in torch.linspace(0, drop_path_rate, depth)]  # stochastic depth decay rule
        self.blocks = nn.ModuleList([
            Block(
                dim=embed_dim, num_heads=num_heads, mlp_ratio=mlp_ratio, qkv_bias=qkv_bias, qk_scale=qk_scale,
                drop=drop_rate, attn_drop=attn_drop_rate, drop_path=dpr[i], norm_layer=norm_layer,
                feature_reuse=feature_reuse, relation_reuse=relation_reuse)
            for i in range(depth)])
        self.norm = norm_layer(embed_dim)

        self.depth = depth
        self.num_heads = num_heads
            
        if relation_reuse:
            # an efficient upsampling implementation
            if self.patch_embed.num_patches == 100:
                self.relation_reuse_upsample = torch.nn.Upsample(size=(14, 14), mode='nearest')
                self.adaptive_avgpool = torch.nn.AdaptiveAvgPool2d((10, 10))
            else:
                self.relation_reuse_upsample = torch.nn.Upsample(size=(20, 20), mode='nearest')
                self.adaptive_avgpool = torch.nn.AdaptiveAvgPool2d((14, 14))
            
            self.relation_reuse_conv = nn.Sequential(
                nn.Conv2d(self.num_heads * self.depth, self.num_heads * self.depth * 3, kernel_size=1, stride=1, padding=0, bias=True),
                GELU(),
                nn.Conv2d(self.num_heads * self.depth * 3, self.num_heads * self.depth, kernel_size=1, stride=1, padding=0, bias=True)
            )

        # Classifier head
        self.head = nn.Linear(embed_dim, num_classes) if num_classes > 0 else nn.Identity()

        trunc_normal_(self.pos_embed, std=.02)
        trunc_normal_(self.cls_token, std=.02)
        self.apply(self._init_weights)

    def _init_weights(self, m):
        if isinstance(m, nn.Linear):
            trunc_normal_(m.weight, std=.02)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.constant_(m.bias, 0)
        elif isinstance(m, nn.LayerNorm):
            nn.init.constant_(m.bias, 0)
            nn.init.constant_(m.weight, 1.0)

    @torch.jit.ignore
    def no_weight_decay(self):
        return {'pos_embed', 'cls_token'}

    def get_classifier(self):
        return self.head

    def reset_classifier(self, num_classes, global_pool=''):
        self.num_classes = num_classes
        self.head = nn.Linear(self.embed_dim, num_classes) if num_classes > 0 else nn.Identity()

    def forward_features(self, x, features_to_be_reused_list, relations_to_be_reused_list):
        B = x.shape[0]
        x = self.patch_embed(x)

        cls_tokens = self.cls_token.expand(B, -1, -1)  # stole cls_tokens impl from Phil Wang, thanks
        x = torch.cat((cls_tokens, x), dim=1)
        x = x + self.pos_embed
        x = self.pos_drop(x)

        if relations_to_be_reused_list is not None:

            new_hw = x.size(1) - 1
            relations_to_be_reused = torch.cat(relations_to_be_reused_list,1)
            relations_to_be_reused = self.relation_reuse_conv(relations_to_be_reused)

            relation_temp = relations_to_be_reused[:, :, :, 1:]
            B, h, n, hw  = relation_temp.shape
            relation_temp = relation_temp.reshape(-1, n, int(np.sqrt(hw)), int(np.sqrt(hw)))

            split_index = int(relation_temp.size(0) / 4)
            relation_temp = torch.cat(
                (
                    self.relation_reuse_upsample(relation_temp[:split_index * 1]),
                    self.relation_reuse_upsample(relation_temp[split_index * 1:split_index * 2]),
                    self.relation_reuse_upsample(relation_temp[split_index * 2:split_index * 3]),
                    self.relation_reuse_upsample(relation_temp[split_index * 3:]),
                ), 0
            )
            relation_temp = self.adaptive_avgpool(relation_temp)
            relation_temp = relation_temp.reshape(-1, n, new_hw)

            relation_temp = torch.cat((relations_to_be_reused[:, :, :, 0].reshape(-1,n,1), relation_temp), dim=2).transpose(1,2)
            relation_cls_token_temp = relation_temp[:,:,0:1]
            relation_temp = relation_temp[:,:,1:]
            relation_temp = relation_temp.reshape(-1, (new_hw+1), int(np.sqrt(hw)), int(np.sqrt(hw)))

            split_index = int(relation_temp.size(0) / 8)
            relation_temp = torch.cat(
                (
                    self.relation_reuse_upsample(relation_temp[:split_index * 1]),
                    self.relation_reuse_upsample(relation_temp[split_index * 1:split_index * 2]),
                    self.relation_reuse_upsample(relation_temp[split_index * 2:split_index * 3]),
                    self.relation_reuse_upsample(relation_temp[split_index * 3:split_index * 4]),
                    self.relation_reuse_upsample(relation_temp[split_index * 4:split_index * 5]),
                    self.relation_reuse_upsample(relation_temp[split_index * 5:split_index * 6]),
                    self.relation_reuse_upsample(relation_temp[split_index * 6:split_index * 7]),
                    self.relation_reuse_upsample(relation_temp[split_index * 7:]),
                ), 0
            )
            relation_temp = self.adaptive_avgpool(relation_temp)
            relation_temp = relation_temp.reshape(-1, (new_hw + 1), new_hw)

            relation_temp = torch.cat((relation_cls_token_temp, relation_temp), dim=2).transpose(1,2).reshape(B,-1,(new_hw+1),(new_hw+1))

            relations_to_be_reused_list = relation_temp.chunk(self.depth, 1)

        feature_list = []
        relation_list = []

        for blk_index in range(len(self.blocks)):

            if features_to_be_reused_list is not None:
                features_to_be_reused = features_to_be_reused_list[0]
            else:
                features_to_be_reused = None

            if relations_to_be_reused_list is not None:
                relations_to_be_reused = relations_to_be_reused_list[blk_index]
            else:
                relations_to_be_reused = None

            x, relation = self.blocks[blk_index](x, features_to_be_reused=features_to_be_reused, relations_to_be_reused=relations_to_be_reused)
            relation_list.append(relation)

        feature_list.append(x)

        x = self.norm(x)
        return x[:, 0], feature_list, relation_list

    def forward(self, x, features_to_be_reused_list=None, relations_to_be_reused_list=None):
        x, feature_list, relation_list = self.forward_features(x, features_to_be_reused_list, relations_to_be_reused_list)
        x = self.head(x)
        return x, feature_list, relation_list


def _conv_filter(state_dict, patch_size=16):
    """ convert patch embedding weight from manual patchify + linear proj to conv"""
    out_dict = {}
    for k, v in state_dict.items():
        if 'patch_embed.proj.weight' in k:
            v = v.reshape((v.shape[0], 3, patch_size, patch_size))
        out_dict[k] = v
    return out_dict


@register_model
def vit_small_patch16_224(pretrained=False, **kwargs):
    if pretrained:
        # NOTE my scale was wrong for original weights, leaving this here until I have better ones for this model
        kwargs.setdefault('qk_scale', 768 ** -0.5)
    model = VisionTransformer(patch_size=16, embed_dim=768, depth=8, num_heads=8, mlp_ratio=3., **kwargs)
    model.default_cfg = default_cfgs['vit_small_patch16_224']
    if pretrained:
        load_pretrained(
            model, num_classes=model.num_classes, in_chans=kwargs.get('in_chans', 3), filter_fn=_conv_filter)
    return model


@register_model
def vit_base_patch16_224(pretrained=False, **kwargs):
    model = VisionTransformer(
        patch_size=16, embed_dim=768, depth=12, num_heads=12, mlp_ratio=4, qkv_bias=True,
        norm_layer=partial(nn.LayerNorm, eps=1e-6), **kwargs)
    model.default_cfg = default_cfgs['vit_base_patch16_224']
    if pretrained:
        load_pretrained(
            model, num_classes=model.num_classes, in_chans=kwargs.get('in_chans', 3), filter_fn=_conv_filter)
    return model


@register_model
def vit_base_patch16_384(pretrained=False, **kwargs):
    model = VisionTransformer(
        img_size=384, patch_size=16, embed_dim=768, depth=12, num_heads=12, mlp_ratio=4, qkv_bias=True,
        norm_layer=partial(nn.LayerNorm, eps=1e-6), **kwargs)
    model.default_cfg = default_cfgs['vit_base_patch16_384']
    if pretrained:
        load_pretrained(model, num_classes=model.num_classes, in_chans=kwargs.get('in_chans', 3))
    return model


@register_model
def vit_base_patch32_384(pretrained=False, **kwargs):
    model = VisionTransformer(
        img_size=384, patch_size=32, embed_dim=768, depth=12, num_heads=12, mlp_ratio=4, qkv_bias=True,
        norm_layer=partial(nn.LayerNorm, eps=1e-6), **kwargs)
    model.default_cfg = default_cfgs['vit_base_patch32_384']
    if pretrained:
        load_pretrained(model, num_classes=model.num_classes, in_chans=kwargs.get('in_chans', 3))
    return model


@register_model
def vit_large_patch16_224(pretrained=False, **kwargs):
    model = VisionTransformer(
        patch_size=16, embed_dim=1024, depth=24, num_heads=16, mlp_ratio=4, qkv_bias=True,
        norm_layer=partial(nn.LayerNorm, eps=1e-6), **kwargs)
    model.default_cfg = default_cfgs['vit_large_patch16_224']
    if pretrained:
        load_pretrained(model, num_classes=model.num_classes, in_chans=kwargs.get('in_chans', 3))
    return model


@register_model
def vit_large_patch16_384(pretrained=False, **kwargs):
    model = VisionTransformer(
        img_size=384, patch_size=16, embed_dim=1024, depth=24, num_heads=16, mlp_ratio=4,  qkv_bias=True,
        norm_layer=partial(nn.LayerNorm, eps=1e-6), **kwargs)
    model.default_cfg = default_cfgs['vit_large_patch16_384']
    if pretrained:
        load_pretrained(model, num_classes=model.num_classes, in_chans=kwargs.get('in_chans', 3))
    return model


@register_model
def vit_large_patch32_384(pretrained=False, **kwargs):
    model = VisionTransformer(
        img_size=384, patch_size=32, embed_dim=1024, depth=24, num_heads=16, mlp_ratio=4,  qkv_bias=True,
        norm_layer=partial(nn.LayerNorm, eps=1e-6), **kwargs)
    model.default_cfg = default_cfgs['vit_large_patch32_384']
    if pretrained:
        load_pretrained(model, num_classes=model.num_classes, in_chans=kwargs.get('in_chans', 3))
    return model


@register_model
def vit_huge_patch16_224(pretrained=False, **kwargs):
    model = VisionTransformer(patch_size=16, embed_dim=1280, depth=32, num_heads=16, mlp_ratio=4, **kwargs)
    model.default_cfg = default_cfgs['vit_huge_patch16_224']
    return model


@register_model
def vit_huge_patch32_384(pretrained=False, **kwargs):
    model = VisionTransformer(
        img_size=384, patch_size=32, embed_dim=1280, depth=32, num_heads=16, mlp_ratio=4, **kwargs)
    model.default_cfg = default_cfgs['vit_huge_patch32_384']
    return model


@register_model
def vit_small_resnet26d_224(pretrained=False, **kwargs):
    pretrained_backbone = kwargs.get('pretrained_backbone', True)  # default to True for now, for testing
    backbone = resnet26d(pretrained=pretrained_backbone, features_only=True, out_indices=[4])
    model = VisionTransformer(
        img_size=224, embed_dim=768, depth=8, num_heads=8, mlp_ratio=3, hybrid_backbone=backbone, **kwargs)
    model.default_cfg = default_cfgs['vit_small_resnet26d_224']
    return model


@register_model
def vit_small_resnet50d_s3_224(pretrained=False, **kwargs):
    pretrained_backbone = kwargs.get('pretrained_backbone', True)  # default to True for now, for testing
    backbone = resnet50d(pretrained=pretrained_backbone, features_only=True, out_indices=[3])
    model = VisionTransformer(
        img_size=224, embed_dim=768, depth=8, num_heads=8, mlp_ratio=3, hybrid_backbone=backbone, **kwargs)
    model.default_cfg = default_cfgs['vit_small_resnet50d_s3_224']
    return model


@register_model
def vit_base_resnet26d_224(pretrained=False, **kwargs):
    pretrained_backbone = kwargs.get('pretrained_backbone', True)  # default to True for now, for testing
    backbone = resnet26d(pretrained=pretrained_backbone, features_only=True, out_indices=[4])
    model = VisionTransformer(
        img_size=224, embed_dim=768, depth=12, num_heads=12, mlp_ratio=4, hybrid_backbone=backbone, **kwargs)
    model.default_cfg = default_cfgs['vit_base_resnet26d_224']
    return model


@register_model
def vit_base_resnet50d_224(pretrained=False, **kwargs):
    pretrained_backbone = kwargs.get('pretrained_backbone', True)  # default to True for now, for testing
    backbone = resnet50d(pretrained=pretrained_backbone, features_only=True, out_indices=[4])
    model = VisionTransformer(
        img_size=224, embed_dim=768, depth=12, num_heads=12, mlp_ratio=4, hybrid_backbone=backbone, **kwargs)
    model.default_cfg = default_cfgs['vit_base_resnet50d_224']
    return model
